use super::*;

const FIXTURE: &str = include_str!("../../tests/fixtures/registry/iana-layout.csv");

fn fixture() -> Registry {
    Registry::from_csv(FIXTURE, "fixture").unwrap()
}

fn header() -> String {
    table::HEADER.join(",")
}

fn parse_error(text: &str) -> (u64, String) {
    match Registry::from_csv(text, "t.csv").unwrap_err() {
        Error::RegistryParse { line, message, .. } => (line, message),
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn parses_iana_layout_with_bom_quotes_newlines_ranges_and_portless_rows() {
    let r = fixture();
    assert_eq!(r.entries().len(), 15);
    let web = &r.by_service("web")[0];
    assert_eq!(web.description(), Some("A \"quoted\" word"));
    let note = web.notes().unwrap();
    assert!(note.starts_with("First line of a note"), "{note:?}");
    assert!(
        note.ends_with("second line, after an embedded newline"),
        "{note:?}"
    );
    let echo = &r.by_service("demo-echo");
    assert_eq!(echo.len(), 2);
    assert_eq!(echo[0].description(), Some("Echo, with a comma"));
    assert_eq!(echo[0].registration_date(), Some("2001-02-03"));
    let portless = &r.by_service("portless-svc")[0];
    assert_eq!(
        (portless.low(), portless.high(), portless.protocol()),
        (None, None, None)
    );
    assert_eq!(portless.reference(), Some("[RFC6335]"));
    let range = &r.by_service("x-range")[0];
    assert_eq!(
        (range.low(), range.high(), range.protocol()),
        (Some(6000), Some(6063), None)
    );
    assert_eq!(range.ports_text(), "6000-6063");
    assert_eq!(r.newest_date(), Some("2014-05-23"));
    let c = r.counts();
    assert_eq!((c.portless, c.all_protocols, c.ranges), (1, 4, 4));
}

#[test]
fn rejects_bad_files_with_line_and_reason() {
    assert!(parse_error("").1.contains("empty"));
    assert!(parse_error("\u{feff}").1.contains("empty"));
    assert!(parse_error("<!DOCTYPE html><html>404</html>")
        .1
        .contains("HTML"));
    assert!(parse_error("Name,Port\nssh,22\n").1.contains("header"));
    assert!(parse_error(&format!("{}\n", header()))
        .1
        .contains("no rows"));
    let h = header();
    let (line, m) = parse_error(&format!("{h}\nssh,22,tcp,SSH,,,,,,,,\nbad,23,tcp\n"));
    assert_eq!(line, 3);
    assert!(m.contains("3 fields"), "{m}");
    let (line, m) = parse_error(&format!(
        "{h}\nssh,22,tcp,SSH,,,,,,,,\nbad,70000,tcp,x,,,,,,,,\n"
    ));
    assert_eq!(line, 3);
    assert!(m.contains("outside 0-65535"), "{m}");
    assert!(parse_error(&format!("{h}\nbad,20-10,tcp,x,,,,,,,,\n"))
        .1
        .contains("backwards"));
    assert!(parse_error(&format!("{h}\nbad,1x,tcp,x,,,,,,,,\n"))
        .1
        .contains("not a number"));
    assert!(parse_error(&format!("{h}\nbad,10,icmp,x,,,,,,,,\n"))
        .1
        .contains("protocol"));
    assert!(parse_error(&format!("{h}\n,,tcp,x,,,,,,,,\n"))
        .1
        .contains("neither"));
    // CRLF line ends and a record spanning two lines: lines are physical lines.
    let crlf = FIXTURE.replace(",80,tcp,Duplicate", ",80,xx,Duplicate");
    assert_eq!(parse_error(&crlf).0, 7);
    let crlf = FIXTURE.replace(",0,tcp,Reserved", ",0,xx,Reserved");
    assert_eq!(parse_error(&crlf).0, 2);
    // A download cut inside a quoted field.
    let (_, m) = parse_error(&format!("{h}\nssh,22,tcp,\"The Secure"));
    assert!(!m.is_empty());
}

#[test]
fn row_status_rule() {
    let r = fixture();
    let status = |port: u16, proto| {
        r.lookup(port, proto)
            .entries
            .iter()
            .map(|e| e.status())
            .collect::<Vec<_>>()
    };
    assert_eq!(status(7, Transport::Tcp), [PortStatus::Assigned]);
    assert_eq!(status(1276, Transport::Tcp), [PortStatus::Reserved]);
    assert_eq!(status(2369, Transport::Udp), [PortStatus::Deregistered]);
    assert_eq!(status(3403, Transport::Dccp), [PortStatus::Deregistered]);
    assert_eq!(status(5500, Transport::Tcp), [PortStatus::Unassigned]);
    let notes = r.entries().nth(1).and_then(|e| e.notes());
    let named_gone = row_status(Some("sua"), Some("De-Registered"), notes);
    assert_eq!(named_gone, PortStatus::Deregistered);
    let private = row_status(None, Some("any private mail system"), notes);
    assert_eq!(private, PortStatus::Reserved);
}

#[test]
fn port_status_precedence_and_protocol_coverage() {
    let r = fixture();
    let status = |port, proto| r.lookup(port, proto).status;
    // An assigned row inside a reserved all-protocol range wins for its protocol only.
    assert_eq!(status(150, Transport::Udp), PortStatus::Assigned);
    assert_eq!(status(150, Transport::Tcp), PortStatus::Reserved);
    assert_eq!(status(199, Transport::Sctp), PortStatus::Reserved);
    assert_eq!(status(200, Transport::Tcp), PortStatus::Unassigned);
    // Empty protocol covers every protocol.
    assert_eq!(status(6003, Transport::Dccp), PortStatus::Assigned);
    assert_eq!(status(6064, Transport::Tcp), PortStatus::Unassigned);
    // Dynamic range: unlisted or listed as unassigned.
    assert_eq!(status(50000, Transport::Tcp), PortStatus::Dynamic);
    assert_eq!(status(60005, Transport::Udp), PortStatus::Dynamic);
    assert_eq!(status(65535, Transport::Udp), PortStatus::Dynamic);
    // Several names on one port and protocol.
    let info = r.lookup(80, Transport::Tcp).info();
    assert_eq!(info.services, ["web", "web-alias"]);
    assert_eq!(info.description.as_deref(), Some("A \"quoted\" word"));
    assert_eq!(
        r.lookup(80, Transport::Udp).info().status,
        PortStatus::Unassigned
    );
    assert_eq!(r.lookup(9, Transport::Sctp).info().services, ["ctl"]);
    assert!(r.lookup(9, Transport::Tcp).entries.is_empty());
}

#[test]
fn service_lookup_is_case_insensitive() {
    let r = fixture();
    assert_eq!(r.by_service("WEB").len(), 1);
    assert_eq!(r.by_service(" Demo-Echo ").len(), 2);
    assert!(r.by_service("nothing").is_empty());
}

#[test]
fn index_matches_brute_force() {
    let ranges: Vec<Option<(u16, u16)>> = vec![
        Some((0, 0)),
        None,
        Some((5, 10)),
        Some((8, 8)),
        Some((10, 20)),
        Some((65530, 65535)),
        Some((0, 65535)),
        Some((21, 21)),
    ];
    let index = table::build_index(&ranges).unwrap();
    for port in (0..=40).chain(65520..=65535) {
        let got: Vec<u32> =
            table::covering(&index.starts, &index.spans, &index.items, port).to_vec();
        let want: Vec<u32> = ranges
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_some_and(|(l, h)| l <= port && port <= h))
            .map(|(i, _)| i as u32)
            .collect();
        assert_eq!(got, want, "port {port}");
    }
}

#[test]
fn embedded_index_matches_brute_force() {
    let r = Registry::embedded();
    for port in (0..=u16::MAX)
        .step_by(37)
        .chain([0, 22, 1023, 6003, 49151, 49152, 65535])
    {
        for proto in Transport::ALL {
            let got: Vec<*const table::Record> = r
                .lookup(port, proto)
                .entries
                .into_iter()
                .map(|e| e.record as *const _)
                .collect();
            let want: Vec<*const table::Record> = r
                .entries()
                .filter(|e| e.covers(port, proto))
                .map(|e| e.record as *const _)
                .collect();
            assert_eq!(got, want, "{port}/{proto}");
        }
    }
}

#[test]
fn embedded_golden_facts() {
    let r = Registry::embedded();
    assert_eq!(r.source().kind, SourceKind::Embedded);
    let ssh = r.lookup(22, Transport::Tcp).info();
    assert_eq!(
        (ssh.status, ssh.services),
        (PortStatus::Assigned, vec!["ssh".to_string()])
    );
    let smsd = r.lookup(596, Transport::Tcp);
    assert!(smsd
        .entries
        .iter()
        .any(|e| e.service() == Some("smsd") && e.assignee() == Some("[Wayne_Barlow]")));
    for proto in [Transport::Tcp, Transport::Udp] {
        let l = r.lookup(1276, proto);
        assert_eq!(l.status, PortStatus::Reserved);
        assert!(l
            .entries
            .iter()
            .any(|e| e.notes() == Some("This entry has been removed on 2014-05-23.")));
    }
    assert_eq!(r.lookup(1596, Transport::Tcp).info().services, ["radio-sm"]);
    assert_eq!(r.lookup(1596, Transport::Udp).info().services, ["radio-bc"]);
    let x11 = r.lookup(6003, Transport::Tcp);
    assert!(x11.entries.iter().any(|e| e.service() == Some("x11")
        && (e.low(), e.high()) == (Some(6000), Some(6063))
        && e.unauthorized_use() == Some("Known Unauthorized Use on port 6003")));
    let r230 = r.lookup(230, Transport::Udp);
    assert_eq!(r230.status, PortStatus::Reserved);
    assert!(r230
        .entries
        .iter()
        .any(|e| (e.low(), e.high()) == (Some(225), Some(241))));
    assert_eq!(r.lookup(50000, Transport::Tcp).status, PortStatus::Dynamic);
    assert!(r.validate_for_install("embedded").is_ok());
}

#[test]
fn embedded_equals_parsed_snapshot() {
    let text = include_str!("../../data/iana/service-names-port-numbers.csv");
    let parsed = Registry::from_csv(text, "snapshot").unwrap();
    let embedded = Registry::embedded();
    assert!(parsed.entries().eq(embedded.entries()));
    // Both paths pack the rows the same way: the same blob and records.
    assert_eq!(parsed.text, embedded.text);
    assert_eq!(parsed.records, embedded.records);
}

#[test]
fn install_validation_rejects_small_or_garbage_files() {
    let e = fixture().validate_for_install("f").unwrap_err().to_string();
    assert!(e.contains("only 15 rows"), "{e}");
    let mut text = header();
    for _ in 0..6000 {
        text.push_str("\r\nsame,1,tcp,Same row,,,,,,,,");
    }
    let e = Registry::from_csv(&text, "dup")
        .unwrap()
        .validate_for_install("dup")
        .unwrap_err();
    assert!(e.to_string().contains("duplicates"), "{e}");
}

#[test]
fn queries() {
    use explain::Query;
    assert_eq!(Query::parse("22").unwrap(), Query::Port(22));
    assert_eq!(
        Query::parse(" 6000-6063 ").unwrap(),
        Query::Range(6000, 6063)
    );
    assert_eq!(Query::parse("7-7").unwrap(), Query::Port(7));
    assert_eq!(Query::parse("SSH").unwrap(), Query::Service("SSH".into()));
    assert_eq!(Query::parse("x11").unwrap(), Query::Service("x11".into()));
    assert_eq!(
        Query::parse("3com-tsmux").unwrap(),
        Query::Service("3com-tsmux".into())
    );
    for bad in [
        "",
        "65536",
        "-1",
        "10-5",
        "1-70000",
        "99999999999999999999",
        "1.5",
    ] {
        assert!(
            matches!(Query::parse(bad), Err(Error::InvalidPort(_))),
            "{bad}"
        );
    }
}

#[test]
fn explain_port_range_and_service() {
    let r = fixture();
    let ex = explain(&r, "150", None, Some((32768, 60999))).unwrap();
    let ports = ex.ports.as_ref().unwrap();
    assert_eq!(ports[0].ephemeral, Some(false));
    let statuses: Vec<_> = ports[0]
        .protocols
        .iter()
        .map(|p| (p.protocol, p.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (Transport::Tcp, PortStatus::Reserved),
            (Transport::Udp, PortStatus::Assigned)
        ]
    );
    assert_eq!(ex.entries.len(), 2);
    assert!(ex.listeners.is_none());

    let ex = explain(&r, "5-100", Some(&[]), None).unwrap();
    assert!(ex.ports.is_none());
    assert_eq!(ex.entries.len(), 6);
    assert_eq!(ex.in_ephemeral_range(), None);
    assert_eq!(ex.listeners.as_ref().map(Vec::len), Some(0));

    let ex = explain(&r, "Demo-Echo", None, Some((1, 10))).unwrap();
    assert_eq!(ex.ports.as_ref().unwrap().len(), 1);
    assert_eq!(ex.in_ephemeral_range(), Some(true));
    assert!(matches!(
        explain(&r, "nope", None, None),
        Err(Error::UnknownService(_))
    ));
}

#[test]
fn heavily_overlapping_ranges_are_refused_not_indexed() {
    let mut csv = String::from("Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,Registration Date,Modification Date,Reference,Service Code,Unauthorized Use Reported,Assignment Notes\r\n");
    for i in 0..30_000u32 {
        csv.push_str(&format!("s{i},{i}-65535,tcp,,,,,,,,,\r\n"));
    }
    let err = Registry::from_csv(&csv, "big.csv").unwrap_err().to_string();
    assert!(
        err.contains("big.csv") && err.contains("overlapping"),
        "{err}"
    );
}

#[test]
fn pack_round_trips_every_field_and_shares_identical_text() {
    let rows = table::parse(FIXTURE).unwrap();
    let (text, records) = table::pack(&rows).unwrap();
    assert_eq!(records.len(), rows.len());
    let r = fixture();
    for (row, e) in rows.iter().zip(r.entries()) {
        let fields = [
            e.description(),
            e.assignee(),
            e.contact(),
            e.registration_date(),
            e.modification_date(),
            e.reference(),
            e.service_code(),
            e.unauthorized_use(),
            e.notes(),
        ];
        assert_eq!(e.service(), row.service.as_deref(), "line {}", row.line);
        assert_eq!(fields, row.text.each_ref().map(|t| t.as_deref()));
        assert_eq!((e.low(), e.high()), (row.low, row.high));
        assert_eq!(
            e.protocol(),
            row.protocol.and_then(|i| Transport::ALL.get(i).copied())
        );
    }
    // demo-echo is listed for TCP and UDP with the same text: stored once.
    let echo = r.by_service("demo-echo");
    assert_eq!(echo[0].record.bounds, echo[1].record.bounds);
    let total: usize = rows
        .iter()
        .flat_map(|row| std::iter::once(&row.service).chain(&row.text))
        .map(|t| t.as_deref().map_or(0, str::len))
        .sum();
    assert!(text.len() < total, "{} >= {total}", text.len());
}

#[test]
fn embedded_tables_hold_the_whole_snapshot() {
    let r = Registry::embedded();
    // Every field is a valid slice of the blob, and the blob holds nothing else.
    let end = r.records.iter().map(|rec| rec.bounds[table::TEXT_FIELDS]);
    assert_eq!(end.max().map(|e| e as usize), Some(r.text.len()));
    assert!(r.records.iter().all(|rec| rec
        .bounds
        .windows(2)
        .all(|w| w[0] <= w[1] && r.text.is_char_boundary(w[1] as usize))));
    assert_eq!(r.entries().len(), r.counts().entries);
}
