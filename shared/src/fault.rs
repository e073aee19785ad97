//! Fault injection for the fault suite (`docs/faults.md`), in debug builds only: a
//! release build compiles [`point`] to nothing.
//!
//! `BRONZE_FAULT=<point>[,<point>…]` makes the first task of the process that reaches
//! one of those points print `bronze-fault: paused at <point>` on stderr and wait for
//! a line on stdin: the test then kills the process (SIGKILL), restarts or cuts the
//! database, and lets it go on (a line) or not. Each point pauses once per process.
//!
//! Dispatch has one point, `recorded` (the ledger row written, the load task not sent).
//! Points, in the order a load meets them: `open` (the object's GET answered, its body
//! not read), `copy` (the first chunk of a COPY sent, the COPY not finished), `merge`
//! (staged, the merge not run), `commit` (all written, before COMMIT), `committed`
//! (after COMMIT, before the batch response: the SQS message is not deleted yet).

/// Pauses here when `BRONZE_FAULT` names `name` (debug builds only).
#[cfg(debug_assertions)]
pub async fn point(name: &'static str) {
    use std::sync::Mutex;
    static FIRED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let Ok(wanted) = std::env::var("BRONZE_FAULT") else {
        return;
    };
    if !wanted.split(',').any(|w| w.trim() == name) {
        return;
    }
    {
        let mut fired = FIRED.lock().unwrap_or_else(|e| e.into_inner());
        if fired.contains(&name) {
            return;
        }
        fired.push(name);
    }
    eprintln!("bronze-fault: paused at {name}");
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)
    })
    .await;
    eprintln!("bronze-fault: resumed at {name}");
}

/// Release builds: nothing.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub async fn point(_name: &'static str) {}
