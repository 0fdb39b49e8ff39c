//! Collection: which sockets listen, and which processes hold them.
//!
//! This module is the only place that switches on the operating system.
//! Linux uses [`linux`] (sock_diag netlink and `/proc`); every other OS uses
//! [`portable`] (netstat2 and sysinfo), which also compiles on Linux so the
//! two can be compared there.

pub mod portable;

#[cfg(target_os = "linux")]
pub mod linux;

/// What a scan covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Every network namespace on the host, not only the scanner's own
    /// (Linux; elsewhere there is only one).
    pub all_netns: bool,
}

/// Every TCP socket in LISTEN and every bound, unconnected UDP socket, IPv4
/// and IPv6, with every process holding each (as far as they are visible),
/// in the scanner's own network namespace.
pub fn scan() -> crate::Result<crate::model::Inventory> {
    scan_with(&ScanOptions::default())
}

/// [`scan`] as `options` say.
pub fn scan_with(options: &ScanOptions) -> crate::Result<crate::model::Inventory> {
    #[cfg(target_os = "linux")]
    {
        linux::scan_with(options)
    }
    #[cfg(not(target_os = "linux"))]
    {
        // No network namespaces here: the one scan covers them all.
        let _ = options;
        portable::scan()
    }
}
