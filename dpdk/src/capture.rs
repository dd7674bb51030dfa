//! Packet capture by stock `dpdk-dumpcap` and `dpdk-pdump` when secondaries do the I/O.
//!
//! DPDK 22.11's pdump adds its rx/tx callbacks in the process that serves the tool's request,
//! the primary, where no burst runs. Here the primary serves the request
//! ([`serve_capture_requests`]: the library's wire format, its statistics memzone) and the
//! processes that poll the queues add the callbacks themselves ([`QueueCapture`]), copying
//! packets into the tool's pool and ring as librte_pdump does (`dpdk-sys/csrc/shim.c`).

use std::ffi::CStr;
use std::sync::OnceLock;

use dpdk_sys as sys;

use crate::error::Error;

/// A capture request from a tool, as the primary decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureRequest {
    /// Start (true) or stop.
    pub enable: bool,
    /// Capture received packets.
    pub rx: bool,
    /// Capture transmitted packets.
    pub tx: bool,
    /// The DPDK device name of the port (what `dpdk-dumpcap -D` lists).
    pub device: String,
    /// The queue, or `None` for every queue.
    pub queue: Option<u16>,
    /// Where the copies go (the tool's ring, pool, filter; addresses valid in every process).
    pub target: CaptureTarget,
    /// The tool's process id, when its IPC socket name tells it.
    pub requester_pid: Option<u32>,
}

/// Where a capturing queue sends its copies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureTarget {
    /// `struct rte_ring *` of the tool.
    pub ring: u64,
    /// `struct rte_mempool *` of the tool.
    pub mempool: u64,
    /// `const struct rte_bpf_prm *` of the tool's filter, or 0.
    pub filter: u64,
    /// Bytes copied of each packet (0: all).
    pub snaplen: u32,
    /// pcapng-wrapped copies (`dpdk-dumpcap`) rather than plain ones (`dpdk-pdump`).
    pub pcapng: bool,
}

/// How the primary answers a request.
pub enum Decision {
    /// At once: accepted, or refused with this errno (positive).
    Now(Result<(), i32>),
    /// When this function returns, run on a thread of its own (so that the EAL's IPC thread,
    /// which the workers' own requests need, is not held meanwhile).
    Later(Box<dyn FnOnce() -> Result<(), i32> + Send>),
}

/// The primary's decision on a request.
pub type Decide = dyn Fn(&CaptureRequest) -> Decision + Send + Sync;

/// The errno answered for an error.
fn wire(r: Result<(), i32>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(errno) => -errno.abs(),
    }
}

static DECIDE: OnceLock<Box<Decide>> = OnceLock::new();

extern "C" fn decide_trampoline(req: *const sys::shim_capture_request) -> i32 {
    // SAFETY: the shim passes a pointer to a request on its stack, valid for this call.
    let req = unsafe { &*req };
    // SAFETY: the shim NUL-terminates `device` within the array.
    let device = unsafe { CStr::from_ptr(req.device.as_ptr()) }.to_string_lossy().into_owned();
    let request = CaptureRequest {
        enable: req.enable != 0,
        rx: req.flags & sys::RTE_PDUMP_FLAG_RX != 0,
        tx: req.flags & sys::RTE_PDUMP_FLAG_TX != 0,
        device,
        queue: (u32::from(req.queue) != sys::RTE_PDUMP_ALL_QUEUES).then_some(req.queue),
        target: CaptureTarget {
            ring: req.ring,
            mempool: req.mempool,
            filter: req.filter,
            snaplen: req.snaplen,
            pcapng: req.pcapng != 0,
        },
        requester_pid: u32::try_from(req.requester_pid).ok().filter(|&p| p > 0),
    };
    let Some(decide) = DECIDE.get() else { return -ENODEV };
    // A panic must not unwind into C.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decide(&request))) {
        Ok(Decision::Now(r)) => wire(r),
        Ok(Decision::Later(f)) => {
            let raw = *req;
            let answer = move || {
                let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_or(-ENODEV, wire);
                // SAFETY: `raw` is a copy of the request, its peer a NUL-terminated path; the
                // EAL outlives the process's threads that use it.
                unsafe { sys::shim_capture_reply(&raw, err) };
            };
            match std::thread::Builder::new().name("capture-answer".into()).spawn(answer) {
                Ok(_) => sys::SHIM_CAPTURE_LATER as i32,
                // No thread: the request is refused rather than answered on this one.
                Err(_) => -ENODEV,
            }
        }
        Err(_) => -ENODEV,
    }
}

/// The errno values this module answers with (Linux's).
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;
const EALREADY: i32 = 114;

/// Primary: answers the capture requests of `dpdk-dumpcap` and `dpdk-pdump` with `decide`'s
/// verdict (after the shim checked the request's version and its filter), on the EAL's IPC
/// thread. Once per process.
pub fn serve_capture_requests(decide: Box<Decide>) -> Result<(), Error> {
    if DECIDE.set(decide).is_err() {
        return Err(Error::call("serve_capture_requests (already serving)", EALREADY));
    }
    // SAFETY: the EAL is initialised (the caller holds an `Eal`); the trampoline is a valid
    // `extern "C"` function for the process's lifetime.
    let rc = unsafe { sys::shim_capture_serve(Some(decide_trampoline)) };
    if rc < 0 {
        return Err(Error::call("shim_capture_serve", rc));
    }
    Ok(())
}

/// Which side of a queue a capture copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueSide {
    Rx,
    Tx,
}

/// One queue of this process copying its packets to a tool, until dropped.
///
/// Start and drop it on the thread that polls the queue (or while nothing does): the callback
/// runs inside this process's bursts on that queue.
pub struct QueueCapture {
    raw: *mut sys::shim_capture,
    target: CaptureTarget,
}

impl QueueCapture {
    /// Starts copying `side` of `queue` on port `port` to `target`.
    pub fn start(port: u16, queue: u16, side: QueueSide, target: CaptureTarget) -> Result<QueueCapture, Error> {
        if target.ring == 0 || target.mempool == 0 {
            return Err(Error::call("QueueCapture::start (no ring or pool)", EINVAL));
        }
        // SAFETY: the addresses are the tool's ring, pool and filter in hugepage memory, mapped
        // at the same address in every process of the instance (the primary accepted them from
        // the tool, which created them); the shim checks the port and queue bounds.
        let raw = unsafe {
            sys::shim_capture_start(
                port,
                queue,
                i32::from(side == QueueSide::Tx),
                target.ring,
                target.mempool,
                target.filter,
                target.snaplen,
                i32::from(target.pcapng),
            )
        };
        if raw.is_null() {
            return Err(Error::last("shim_capture_start"));
        }
        Ok(QueueCapture { raw, target })
    }

    /// Where it copies to.
    pub fn target(&self) -> CaptureTarget {
        self.target
    }
}

impl Drop for QueueCapture {
    fn drop(&mut self) {
        // SAFETY: `raw` came from shim_capture_start and is stopped once; the owner drops it on
        // the polling thread (no burst on the queue is in flight).
        unsafe { sys::shim_capture_stop(self.raw) };
    }
}
