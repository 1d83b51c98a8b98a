//! The other process privileges of the spec that are not capabilities or user: personality,
//! I/O priority, scheduler, and the AppArmor/SELinux labels (checked against the host, since
//! silently running unconfined would be worse than failing).

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process, Spec,
};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub const PERSONALITY_DOMAINS: &[&str] = &["LINUX", "LINUX32"];

/// `linux.personality`: LINUX32 makes uname(2) report a 32-bit machine (i686 on x86_64).
pub fn set_personality(spec: &Spec) -> Result<()> {
    set_personality_of(spec.linux().as_ref())
}

/// [`set_personality`] from the linux section alone (what `exec` keeps of the config).
pub fn set_personality_of(linux: Option<&Linux>) -> Result<()> {
    let Some(p) = linux.and_then(|l| l.personality().as_ref()) else {
        return Ok(());
    };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        bail!("linux.personality.flags: no flags are supported");
    }
    let persona: libc::c_ulong = match p.domain() {
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality only changes this process's execution domain.
    if unsafe { libc::personality(persona) } == -1 {
        return Err(std::io::Error::last_os_error()).context("linux.personality: personality(2)");
    }
    Ok(())
}

/// `process.ioPriority`, through ioprio_set(IOPRIO_WHO_PROCESS); run while still privileged,
/// since the realtime class needs CAP_SYS_ADMIN.
pub fn set_io_priority(process: &Process) -> Result<()> {
    let Some(io) = process.io_priority() else {
        return Ok(());
    };
    let class: i64 = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&io.priority()) {
        bail!(
            "process.ioPriority.priority: {} is out of range (0-7)",
            io.priority()
        );
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let value = (class << 13) | io.priority();
    // SAFETY: plain syscall on this process.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) } != 0 {
        return Err(std::io::Error::last_os_error()).context("process.ioPriority: ioprio_set");
    }
    Ok(())
}

#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// `process.scheduler`, through sched_setattr(2).
pub fn set_scheduler(process: &Process) -> Result<()> {
    let Some(s) = process.scheduler() else {
        return Ok(());
    };
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => {
            bail!("process.scheduler.policy: SCHED_ISO is not implemented by Linux")
        }
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().as_deref().unwrap_or_default() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        bail!("process.scheduler.nice: {nice} is out of range (-20..19)");
    }
    let priority = u32::try_from(s.priority().unwrap_or(0))
        .map_err(|_| anyhow::anyhow!("process.scheduler.priority: must not be negative"))?;
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        util_min: 0,
        util_max: 1024,
    };
    // SAFETY: the kernel reads `size` bytes of the struct we own.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("process.scheduler: sched_setattr");
    }
    Ok(())
}

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuses labels the host cannot apply. Run before pivot_root: the answer is the host's /sys.
pub fn check_lsm(process: &Process) -> Result<()> {
    if process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        && !apparmor_enabled()
    {
        bail!("process.apparmorProfile: AppArmor is not enabled on this host");
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
        && !selinux_enabled()
    {
        bail!("process.selinuxLabel: SELinux is not enabled on this host");
    }
    Ok(())
}

/// Writes an LSM attribute, refusing a file that is not on procfs: a volume or symlink over the
/// container's /proc would otherwise swallow the label and leave it unconfined (CVE-2019-16884).
fn write_attr(path: &str, value: &str, field: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("{field}: open {path}"))?;
    if !crate::runtime::resolve::is_procfs(&f) {
        bail!("{field}: {path} is not on procfs");
    }
    f.write_all(value.as_bytes())
        .with_context(|| format!("{field}: apply {value:?}"))
}

/// Asks the LSMs to switch labels at the coming execve, as runc does, so nothing of hull runs
/// under the container's profile.
pub fn apply_lsm(process: &Process) -> Result<()> {
    if let Some(p) = process
        .apparmor_profile()
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        let attr = if Path::new("/proc/thread-self/attr/apparmor/exec").exists() {
            "/proc/thread-self/attr/apparmor/exec"
        } else {
            "/proc/thread-self/attr/exec"
        };
        write_attr(attr, &format!("exec {p}"), "process.apparmorProfile")?;
    }
    if let Some(l) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
        write_attr("/proc/thread-self/attr/exec", l, "process.selinuxLabel")?;
    }
    Ok(())
}
