//! Running a function on the EAL's lcores: every worker lcore (an EAL thread pinned where
//! `--lcores` put it) and the calling thread at once, back when all of them have returned.
//!
//! Invariants: at most one launch is under way in the process (EAL's launch calls are for one
//! caller at a time, and a nested launch from inside a launched function would wait for its own
//! lcore); the borrowed function and the results outlive every lcore that runs it, because
//! [`Eal::run_on_lcores`] waits for all workers before it returns, even when one panicked; a
//! panic never unwinds into DPDK's C frames.

use std::any::Any;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::{Eal, Error, LcoreId};

/// Taken for the whole of a launch.
static LAUNCHING: Mutex<()> = Mutex::new(());

/// Linux's `EBUSY`, which DPDK returns when a worker lcore is not waiting for a function.
const EBUSY: i32 = 16;

/// What every lcore of one launch shares: the function, and where the results go.
struct Launch<'f, T> {
    f: &'f (dyn Fn(LcoreId) -> T + Sync),
    results: Mutex<Vec<(LcoreId, T)>>,
    /// The first panic, resumed on the caller's thread once every lcore has returned.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What DPDK calls on each lcore.
///
/// # Safety
/// `arg` points to a live `Launch<'_, T>` that outlives the call.
unsafe extern "C" fn trampoline<T: Send>(arg: *mut c_void) -> c_int {
    // SAFETY: `run_on_lcores` passes a pointer to its own `Launch<'_, T>` and waits for every
    // lcore to return before that value goes out of scope; it is only read through `&` here
    // (its mutable parts are behind mutexes).
    let launch = unsafe { &*arg.cast::<Launch<'_, T>>() };
    let lcore = LcoreId::current();
    match catch_unwind(AssertUnwindSafe(|| (launch.f)(lcore))) {
        Ok(v) => {
            lock(&launch.results).push((lcore, v));
            0
        }
        Err(p) => {
            lock(&launch.panic).get_or_insert(p);
            -1
        }
    }
}

impl Eal {
    /// Runs `f` on every worker lcore and on the calling thread at the same time, each call
    /// given the id of the lcore it runs on ([`LcoreId::current`]), and returns when every
    /// call has returned: the results, by lcore id. Call it from the thread that initialised
    /// the EAL (the main lcore): that thread's call then gets the main lcore's id (a thread
    /// that is no EAL lcore gets `u32::MAX`).
    ///
    /// # Errors
    /// [`Error::Call`] with `EBUSY` when another launch is under way (such as a call from
    /// inside `f`) or a worker lcore is still running something launched before; then `f`
    /// ran nowhere.
    ///
    /// # Panics
    /// Resumes the first panic of `f`, once every lcore has returned.
    pub fn run_on_lcores<T: Send>(&self, f: impl Fn(LcoreId) -> T + Sync) -> Result<Vec<(LcoreId, T)>, Error> {
        let _one = match LAUNCHING.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(Error::call("rte_eal_mp_remote_launch", EBUSY)),
        };
        let launch = Launch { f: &f, results: Mutex::new(Vec::new()), panic: Mutex::new(None) };
        let arg = std::ptr::from_ref(&launch).cast_mut().cast::<c_void>();
        // SAFETY: the EAL is initialised (`&self`); `trampoline::<T>` matches `Launch<'_, T>`
        // behind `arg`, which lives until the wait below has seen every worker return;
        // `LAUNCHING` makes this the only launch under way. DPDK checks that every worker is
        // waiting before it sends anything (else -EBUSY and nothing runs), then calls the
        // function on this thread before it returns.
        let ret = unsafe {
            dpdk_sys::rte_eal_mp_remote_launch(Some(trampoline::<T>), arg, dpdk_sys::rte_rmt_call_main_t_CALL_MAIN)
        };
        if ret < 0 {
            return Err(Error::call("rte_eal_mp_remote_launch", ret));
        }
        // SAFETY: called on the launching thread after a launch; returns once every worker
        // lcore is back to waiting, so none uses `launch` any more.
        unsafe { dpdk_sys::rte_eal_mp_wait_lcore() };
        if let Some(p) = lock(&launch.panic).take() {
            resume_unwind(p);
        }
        let mut results = std::mem::take(&mut *lock(&launch.results));
        results.sort_by_key(|r| r.0);
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::panic::catch_unwind;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// The EAL initialises once per process: this is the crate's only unit test that does.
    #[test]
    fn a_function_runs_on_every_lcore_at_once_and_its_panics_come_back() {
        let prefix = format!("dpdk-launch-test-{}", std::process::id());
        let args = [
            "dpdk-launch-test",
            "--lcores=0@0,1@1,2@0",
            "--no-huge",
            "-m",
            "64",
            "--no-shconf",
            "--no-pci",
            "--no-telemetry",
            "--log-level=*:warning",
            &format!("--file-prefix={prefix}"),
        ];
        let eal = Eal::init(&args).expect("EAL init");
        // Every lcore once, the main one on this thread, the others on threads of their own.
        let ran = eal.run_on_lcores(|id| (id, std::thread::current().id())).unwrap();
        assert_eq!(ran.iter().map(|r| r.0).collect::<Vec<_>>(), [LcoreId(0), LcoreId(1), LcoreId(2)]);
        assert!(ran.iter().all(|(id, (on, _))| id == on));
        assert_eq!(ran[0].1 .1, std::thread::current().id());
        assert_eq!(ran.iter().map(|r| r.1 .1).collect::<HashSet<_>>().len(), 3);
        // The function borrows from the caller's stack.
        let hits = AtomicU32::new(0);
        eal.run_on_lcores(|_| hits.fetch_add(1, Ordering::Relaxed)).unwrap();
        assert_eq!(hits.load(Ordering::Relaxed), 3);
        // A launch from inside a launched function is refused rather than waiting for itself.
        let nested = eal.run_on_lcores(|_| eal.run_on_lcores(|_| ()).is_err()).unwrap();
        assert!(nested.iter().all(|r| r.1));
        // A worker's panic comes back once every lcore has returned, and the lcores serve again.
        let back = catch_unwind(AssertUnwindSafe(|| {
            eal.run_on_lcores(|id| assert_ne!(id, LcoreId(2), "a panic on lcore 2")).unwrap()
        }));
        assert!(back.is_err());
        assert_eq!(eal.run_on_lcores(|id| id.0).unwrap().len(), 3);
        drop(eal);
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    }
}
