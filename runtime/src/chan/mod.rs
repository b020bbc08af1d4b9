//! Channels and `select` (Go's chan.go, select.go).
//!
//! # Design
//!
//! A [`Chan<T>`] is a cloneable handle (Go's channel value) to a `RawChan`
//! (Go's `hchan`): a short-hold runtime lock, a ring buffer of capacity
//! `cap` (0: unbuffered), a `closed` flag and two FIFO wait queues, `recvq`
//! and `sendq`, of *sudogs* — waiter records living on the blocked party's
//! stack (a goroutine's stack never moves, so nothing is allocated to
//! block). A sudog holds the value being sent, or the slot a received
//! value lands in: an unbuffered send copies the value straight into the
//! waiting receiver's slot and a receive takes it straight out of a waiting
//! sender's sudog (Go's `sendDirect`/`recvDirect`).
//!
//! Invariants (Go's):
//!
//! - At least one of `sendq` and `recvq` is empty, except for an
//!   unbuffered channel with one goroutine blocked on it for both sending
//!   and receiving through a `select!`.
//! - Buffered channels: a non-empty buffer implies `recvq` is empty; a
//!   buffer with room implies `sendq` is empty.
//! - Once `closed` is set (under the lock) both queues are empty and stay
//!   empty: sends panic, receives drain the buffer and then see `None`.
//!
//! # The claim protocol
//!
//! Every blocked operation (a `send`, a `recv`, a whole `select!`) owns one
//! `Sel` record: a claim word (Go's `g.selectDone`), the outcome (Go's
//! `g.param` and `sudog.success`), a `woken` flag and the waker of the
//! goroutine or thread. Its sudogs (one per select case) point at it. Any
//! party that wants to complete the operation — a peer that dequeued one
//! of its sudogs, `close`, or the deadline timer of a `recv_timeout` —
//! must first win the claim CAS; a peer that loses simply drops the sudog
//! from its queue and looks at the next one (Go's `waitq.dequeue`). The
//! winner writes the value, records `(case, ok)`, takes the waker, releases
//! the channel lock, stores `woken` (release) and wakes the owner; that
//! store is its last touch of the owner's stack. The owner sleeps until it
//! sees `woken` (acquire), so each blocked operation is completed exactly
//! once and values are never lost or duplicated.
//!
//! Lost wake-ups are impossible because a goroutine queues its sudogs
//! under the channel lock and the lock is released only after the
//! goroutine has switched out (Go's `gopark` with `chanparkcommit`); a
//! plain OS thread releases it and then sleeps until `woken` (spurious
//! `unpark`s are absorbed). Deadlines are armed at that same point.
//!
//! # Blocking from threads
//!
//! Everything works from plain OS threads too: a thread that must wait
//! parks itself (`std::thread::park`) instead of its goroutine.
//!
//! Rejected: a lock-free ring for buffered channels (Go keeps the lock:
//! sends and receives must agree with the wait queues and `close` anyway,
//! and the lock is uncontended most of the time); allocating waiter nodes
//! (the blocked party's stack is free and stable).

#[cfg(loom)]
pub mod hchan;
#[cfg(not(loom))]
mod hchan;
#[cfg(loom)]
pub mod select;
#[cfg(not(loom))]
mod select;
#[cfg(loom)]
pub mod timer;
#[cfg(not(loom))]
mod timer;

#[cfg(not(loom))]
mod api;
#[cfg(not(loom))]
pub use api::*;
