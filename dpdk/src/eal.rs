use std::ffi::{c_char, CString};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Error;

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// An EAL lcore id (`0..RTE_MAX_LCORE`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LcoreId(pub u32);

impl LcoreId {
    /// Largest number of lcores the linked DPDK supports.
    pub const MAX: u32 = dpdk_sys::RTE_MAX_LCORE;

    /// The lcore id of the calling thread (`u32::MAX` for a non-EAL thread).
    pub fn current() -> LcoreId {
        // SAFETY: reads a thread-local; no preconditions.
        LcoreId(unsafe { dpdk_sys::shim_lcore_id() })
    }
}

impl fmt::Debug for LcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lcore{}", self.0)
    }
}

impl fmt::Display for LcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether this process is the EAL primary or a secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessType {
    /// Owns hugepage memory and devices.
    Primary,
    /// Attached to a primary's memory.
    Secondary,
}

/// The initialised EAL of this process. Dropping it runs `rte_eal_cleanup`.
#[derive(Debug)]
pub struct Eal {
    process_type: ProcessType,
}

impl Eal {
    /// Initialises the EAL with `args` (EAL arguments only; `args[0]` is the program name).
    ///
    /// # Errors
    /// [`Error::AlreadyInitialised`] on a second call, [`Error::BadName`] for an argument with
    /// a NUL byte, [`Error::Call`] when `rte_eal_init` fails.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, Error> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::AlreadyInitialised);
        }
        let cargs = args
            .iter()
            .map(|a| CString::new(a.as_ref()).map_err(|_| Error::BadName(a.as_ref().to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        // EAL keeps pointers into argv (e.g. for --vdev strings) after init: leak them on
        // purpose, once per process.
        let mut argv: Vec<*mut c_char> = cargs.into_iter().map(CString::into_raw).collect();
        argv.push(std::ptr::null_mut());
        let argv = Box::leak(argv.into_boxed_slice());
        let argc = i32::try_from(argv.len() - 1).map_err(|_| Error::call("rte_eal_init", 7))?;
        // SAFETY: argv holds argc valid NUL-terminated strings followed by NULL, leaked so
        // they outlive the EAL; INITIALISED guarantees this runs once per process.
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(Error::last("rte_eal_init"));
        }
        // SAFETY: valid after a successful rte_eal_init.
        let pt = unsafe { dpdk_sys::rte_eal_process_type() };
        let process_type = if pt == dpdk_sys::rte_proc_type_t_RTE_PROC_PRIMARY {
            ProcessType::Primary
        } else {
            ProcessType::Secondary
        };
        Ok(Eal { process_type })
    }

    /// Primary or secondary.
    pub fn process_type(&self) -> ProcessType {
        self.process_type
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: the EAL was initialised by `Eal::init`; every DPDK object of this process
        // that borrows from it (ports, pools) is dropped or no longer used by now (it is the
        // caller's last step before exit).
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }
}

/// Time-stamp counter ticks per second (valid after EAL init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value computed at EAL init; no preconditions.
    unsafe { dpdk_sys::shim_tsc_hz() }
}
