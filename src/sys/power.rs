//! Power actions through `reboot(2)`, and the Ctrl-Alt-Del switch.
//!
//! With Ctrl-Alt-Del disabled ([`set_ctrl_alt_del`]`(false)`), the kernel does not restart the
//! machine at once when the key combination is pressed but sends `SIGINT` to PID 1, which then
//! runs an orderly reboot. Outside the initial PID namespace `reboot(2)` can only end the
//! namespace (and the Ctrl-Alt-Del switch fails with `EINVAL`): container nodes exit instead.

use std::convert::Infallible;

use nix::sys::reboot::RebootMode;

use super::SysError;

/// What to do with the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Restart the machine.
    Restart,
    /// Switch the power off.
    PowerOff,
    /// Stop the CPUs, leave the power on (`talos.shutdown=halt`).
    Halt,
}

impl PowerAction {
    /// The `reboot(2)` command for this action.
    pub fn mode(self) -> RebootMode {
        match self {
            PowerAction::Restart => RebootMode::RB_AUTOBOOT,
            PowerAction::PowerOff => RebootMode::RB_POWER_OFF,
            PowerAction::Halt => RebootMode::RB_HALT_SYSTEM,
        }
    }

    /// A name for log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Restart => "restart",
            PowerAction::PowerOff => "power off",
            PowerAction::Halt => "halt",
        }
    }

    /// The shutdown action a `talos.shutdown=` kernel argument asks for (`halt` or
    /// `poweroff`; anything else: power off).
    pub fn shutdown_from_kernel_arg(value: Option<&str>) -> PowerAction {
        match value {
            Some("halt") => PowerAction::Halt,
            _ => PowerAction::PowerOff,
        }
    }
}

/// Flushes file systems and performs `action`. Returns only on failure.
pub fn reboot(action: PowerAction) -> Result<Infallible, SysError> {
    nix::unistd::sync();
    nix::sys::reboot::reboot(action.mode()).map_err(|source| SysError::Syscall {
        call: format!("reboot ({})", action.as_str()),
        source,
    })
}

/// Enables (`true`: the kernel restarts at once) or disables (`false`: PID 1 gets `SIGINT`)
/// the Ctrl-Alt-Del key combination.
pub fn set_ctrl_alt_del(enabled: bool) -> Result<(), SysError> {
    nix::sys::reboot::set_cad_enabled(enabled).map_err(|source| SysError::Syscall {
        call: format!(
            "reboot (Ctrl-Alt-Del {})",
            if enabled { "on" } else { "off" }
        ),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_to_reboot_commands() {
        assert_eq!(PowerAction::Restart.mode(), RebootMode::RB_AUTOBOOT);
        assert_eq!(PowerAction::PowerOff.mode(), RebootMode::RB_POWER_OFF);
        assert_eq!(PowerAction::Halt.mode(), RebootMode::RB_HALT_SYSTEM);
        assert_eq!(
            PowerAction::shutdown_from_kernel_arg(Some("halt")),
            PowerAction::Halt
        );
        assert_eq!(
            PowerAction::shutdown_from_kernel_arg(Some("poweroff")),
            PowerAction::PowerOff
        );
        assert_eq!(
            PowerAction::shutdown_from_kernel_arg(None),
            PowerAction::PowerOff
        );
    }

    #[test]
    fn unprivileged_reboot_is_refused() {
        if nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED (needs a non-root user): unprivileged_reboot_is_refused");
            return;
        }
        assert!(set_ctrl_alt_del(false).is_err());
    }
}
