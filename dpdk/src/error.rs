use std::ffi::CStr;

/// An error from a DPDK call.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// `{call}` failed: {message} (errno {errno})
    #[error("{call} failed: {message} (errno {errno})")]
    Call {
        /// The DPDK function that failed.
        call: &'static str,
        /// `rte_errno`, or the negated return value.
        errno: i32,
        /// `rte_strerror(errno)`.
        message: String,
    },
    /// The EAL may be initialised once per process.
    #[error("the EAL is already initialised in this process")]
    AlreadyInitialised,
    /// A name passed to DPDK contained a NUL byte or was too long.
    #[error("invalid name {0:?}: names are at most 31 bytes without NUL")]
    BadName(String),
    /// A lookup by name found nothing.
    #[error("no {what} named {name:?}")]
    NotFound {
        /// port, mempool, ring
        what: &'static str,
        /// The name that was looked up.
        name: String,
    },
    /// A queue handle exists already in this process.
    #[error("queue {port}:{queue} is already owned in this process")]
    QueueBusy {
        /// Port id.
        port: u16,
        /// Queue id.
        queue: u16,
    },
}

impl Error {
    /// Builds an error from an errno value.
    pub(crate) fn call(call: &'static str, errno: i32) -> Self {
        let errno = errno.abs();
        // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
        // string, valid at least until the next call on this thread; we copy it at once.
        let message = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(errno)) }.to_string_lossy().into_owned();
        Error::Call { call, errno, message }
    }

    /// Builds an error from the current `rte_errno`.
    pub(crate) fn last(call: &'static str) -> Self {
        // SAFETY: reads the thread-local rte_errno; no preconditions.
        let errno = unsafe { dpdk_sys::shim_errno() };
        Self::call(call, errno)
    }

    /// Maps DPDK's "0 or negative errno" convention.
    pub(crate) fn check(call: &'static str, ret: i32) -> Result<i32, Self> {
        if ret < 0 {
            Err(Self::call(call, ret))
        } else {
            Ok(ret)
        }
    }
}

/// Copies a name into a C string of at most 31 bytes (DPDK's RTE_MEMZONE_NAMESIZE - 1).
pub(crate) fn c_name(name: &str) -> Result<std::ffi::CString, Error> {
    if name.len() > 31 {
        return Err(Error::BadName(name.to_owned()));
    }
    std::ffi::CString::new(name).map_err(|_| Error::BadName(name.to_owned()))
}
