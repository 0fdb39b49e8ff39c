//! Exit statuses, in one place.

/// How the process ends. portwarden's own codes are 0, 1 and 2; Nagios
/// plugin output adds 3 (UNKNOWN), as the plugin API requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: nothing unexpected (or a listing, which always succeeds).
    Ok,
    /// 1: something unexpected was found (`check`); Nagios WARNING.
    Findings,
    /// 2: an error (bad usage, file, registry, or cannot enumerate); Nagios CRITICAL.
    Error,
    /// 3: Nagios UNKNOWN: the check itself could not run.
    Unknown,
}

impl Exit {
    /// The numeric status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Findings => 1,
            Exit::Error => 2,
            Exit::Unknown => 3,
        }
    }
}
