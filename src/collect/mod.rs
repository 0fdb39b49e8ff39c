//! Collection: which sockets listen, and which processes hold them.
//!
//! This module is the only place that switches on the operating system.
//! Linux uses [`linux`] (sock_diag netlink and `/proc`); every other OS uses
//! [`portable`] (netstat2 and sysinfo), which also compiles on Linux so the
//! two can be compared there.

pub mod portable;

#[cfg(target_os = "linux")]
pub mod linux;

/// Every TCP socket in LISTEN and every bound, unconnected UDP socket, IPv4
/// and IPv6, with every process holding each (as far as they are visible).
pub fn scan() -> crate::Result<crate::model::Inventory> {
    #[cfg(target_os = "linux")]
    {
        linux::scan()
    }
    #[cfg(not(target_os = "linux"))]
    {
        portable::scan()
    }
}
