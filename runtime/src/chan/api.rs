//! The public channel types: [`Chan`], [`Sender`], [`Receiver`], their
//! errors and iterators, and the hidden entry points `select!` expands to.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hchan::{RawChan, RecvFail, SendFail};

/// A channel: Go's `chan T`, as a cloneable handle.
///
/// `Chan::new(0)` is unbuffered: a send waits for a receiver and hands it
/// the value directly. `Chan::new(n)` buffers up to `n` values. Waiters
/// are served first come, first served. Blocking parks the goroutine (its
/// thread runs other goroutines); on a plain OS thread it parks the thread.
///
/// Cloning a `Chan` gives another handle to the same channel (like copying
/// a Go channel value); handles compare equal when they name the same
/// channel. There is no nil channel: use `Option<Chan<T>>`.
///
/// ```
/// use gort::chan::Chan;
///
/// let ch = Chan::new(0);
/// let tx = ch.clone();
/// gort::go(move || {
///     for i in 0..3 {
///         tx.send(i);
///     }
///     tx.close();
/// });
/// let got: Vec<i32> = ch.iter().collect();
/// assert_eq!(got, [0, 1, 2]);
/// ```
pub struct Chan<T> {
    raw: Arc<RawChan<T>>,
}

impl<T> Chan<T> {
    /// Go's `make(chan T, cap)`: a channel buffering up to `cap` values;
    /// `0` makes an unbuffered (rendezvous) channel.
    ///
    /// ```
    /// let ch = gort::chan::Chan::<u8>::new(4);
    /// assert_eq!(ch.cap(), 4);
    /// assert_eq!(ch.len(), 0);
    /// ```
    pub fn new(cap: usize) -> Chan<T> {
        Chan { raw: Arc::new(RawChan::new(cap)) }
    }

    /// Go's `ch <- v`: sends `v`, waiting for buffer room or a receiver.
    ///
    /// # Panics
    ///
    /// With Go's message `send on closed channel` if the channel is closed
    /// before or while the send waits (the value is dropped).
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(1);
    /// ch.send("hello");
    /// assert_eq!(ch.recv(), Some("hello"));
    /// ```
    pub fn send(&self, v: T) {
        send(&self.raw, v)
    }

    /// Go's `v, ok := <-ch`: receives a value, waiting for one if needed.
    /// Returns `None` once the channel is closed and its buffer drained.
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(1);
    /// ch.send(7);
    /// ch.close();
    /// assert_eq!(ch.recv(), Some(7));
    /// assert_eq!(ch.recv(), None);
    /// ```
    pub fn recv(&self) -> Option<T> {
        recv(&self.raw)
    }

    /// Sends without waiting (Go's `select` with a `default` arm).
    ///
    /// Unlike Go, where a non-blocking send on a closed channel still
    /// panics, this returns [`TrySendError::Closed`] with the value, in the
    /// way of Rust channels. (`select!` with a `send` arm and `default`
    /// panics, as Go does.)
    ///
    /// ```
    /// use gort::chan::{Chan, TrySendError};
    /// let ch = Chan::new(1);
    /// assert_eq!(ch.try_send(1), Ok(()));
    /// assert_eq!(ch.try_send(2), Err(TrySendError::Full(2)));
    /// ch.close();
    /// assert_eq!(ch.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        try_send(&self.raw, v)
    }

    /// Receives without waiting.
    ///
    /// ```
    /// use gort::chan::{Chan, TryRecvError};
    /// let ch = Chan::new(1);
    /// assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    /// ch.send(5);
    /// assert_eq!(ch.try_recv(), Ok(5));
    /// ch.close();
    /// assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        try_recv(&self.raw)
    }

    /// Sends, giving up after `timeout` (Go's `select` with a
    /// `time.After` arm). A closed channel is reported as
    /// [`SendTimeoutError::Closed`] rather than a panic, as for
    /// [`try_send`](Chan::try_send).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::chan::{Chan, SendTimeoutError};
    /// let ch = Chan::new(0);
    /// let r = ch.send_timeout(1, Duration::from_millis(10));
    /// assert_eq!(r, Err(SendTimeoutError::Timeout(1)));
    /// ```
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        send_timeout(&self.raw, v, timeout)
    }

    /// Receives, giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::chan::{Chan, RecvTimeoutError};
    /// let ch = Chan::<i32>::new(0);
    /// assert_eq!(ch.recv_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
    /// ch.close();
    /// assert_eq!(ch.recv_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Closed));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        recv_timeout(&self.raw, timeout)
    }

    /// Go's `close(ch)`: no more values will be sent. Waiting receivers
    /// wake with `None` (after the buffer drains, later receivers too);
    /// waiting and later senders panic.
    ///
    /// # Panics
    ///
    /// `close of closed channel` if already closed.
    ///
    /// ```
    /// let ch = gort::chan::Chan::<()>::new(0);
    /// ch.close();
    /// assert!(ch.is_closed());
    /// assert_eq!(ch.recv(), None);
    /// ```
    pub fn close(&self) {
        close(&self.raw)
    }

    /// Go's `len(ch)`: the number of buffered values.
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(3);
    /// ch.send(1);
    /// assert_eq!(ch.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether no values are buffered.
    ///
    /// ```
    /// assert!(gort::chan::Chan::<u8>::new(3).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Go's `cap(ch)`: the buffer size given to [`new`](Chan::new).
    ///
    /// ```
    /// assert_eq!(gort::chan::Chan::<u8>::new(0).cap(), 0);
    /// ```
    pub fn cap(&self) -> usize {
        self.raw.cap()
    }

    /// Whether [`close`](Chan::close) has been called (values may still be
    /// buffered).
    ///
    /// ```
    /// let ch = gort::chan::Chan::<u8>::new(1);
    /// assert!(!ch.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.raw.is_closed()
    }

    /// A send-only view (Go's `chan<- T`).
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(1);
    /// let tx = ch.sender();
    /// tx.send(1);
    /// assert_eq!(ch.recv(), Some(1));
    /// ```
    pub fn sender(&self) -> Sender<T> {
        Sender { ch: self.clone() }
    }

    /// A receive-only view (Go's `<-chan T`).
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(1);
    /// let rx = ch.receiver();
    /// ch.send(1);
    /// assert_eq!(rx.recv(), Some(1));
    /// ```
    pub fn receiver(&self) -> Receiver<T> {
        Receiver { ch: self.clone() }
    }

    /// Iterates over received values until the channel is closed and
    /// drained (Go's `for v := range ch`).
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(2);
    /// ch.send(1);
    /// ch.send(2);
    /// ch.close();
    /// assert_eq!(ch.iter().sum::<i32>(), 3);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { raw: &self.raw }
    }

    pub(crate) fn raw(&self) -> &RawChan<T> {
        &self.raw
    }
}

fn send<T>(raw: &RawChan<T>, v: T) {
    crate::preempt_point();
    if raw.send_until(v, None).is_err() {
        panic!("send on closed channel");
    }
}

fn recv<T>(raw: &RawChan<T>) -> Option<T> {
    crate::preempt_point();
    match raw.recv_until(None) {
        Ok(v) => v,
        Err(RecvFail::Empty) => unreachable!("gort: a blocking receive timed out"),
    }
}

fn try_send<T>(raw: &RawChan<T>, v: T) -> Result<(), TrySendError<T>> {
    raw.try_send(v).map_err(|e| match e {
        SendFail::Full(v) => TrySendError::Full(v),
        SendFail::Closed(v) => TrySendError::Closed(v),
    })
}

fn try_recv<T>(raw: &RawChan<T>) -> Result<T, TryRecvError> {
    match raw.try_recv() {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(TryRecvError::Closed),
        Err(RecvFail::Empty) => Err(TryRecvError::Empty),
    }
}

fn send_timeout<T>(raw: &RawChan<T>, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
    crate::preempt_point();
    raw.send_until(v, Instant::now().checked_add(timeout)).map_err(|e| match e {
        SendFail::Full(v) => SendTimeoutError::Timeout(v),
        SendFail::Closed(v) => SendTimeoutError::Closed(v),
    })
}

fn recv_timeout<T>(raw: &RawChan<T>, timeout: Duration) -> Result<T, RecvTimeoutError> {
    crate::preempt_point();
    match raw.recv_until(Instant::now().checked_add(timeout)) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(RecvTimeoutError::Closed),
        Err(RecvFail::Empty) => Err(RecvTimeoutError::Timeout),
    }
}

fn close<T>(raw: &RawChan<T>) {
    if !raw.close() {
        panic!("close of closed channel");
    }
}

impl<T> Clone for Chan<T> {
    fn clone(&self) -> Self {
        Chan { raw: self.raw.clone() }
    }
}

impl<T> PartialEq for Chan<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.raw, &other.raw)
    }
}

impl<T> Eq for Chan<T> {}

impl<T> fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chan({:p}, len {}, cap {}", Arc::as_ptr(&self.raw), self.len(), self.cap())?;
        if self.is_closed() {
            f.write_str(", closed")?;
        }
        f.write_str(")")
    }
}

impl<'a, T> IntoIterator for &'a Chan<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Chan<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { ch: self }
    }
}

/// The sending half of a [`Chan`] (Go's `chan<- T`). Cloneable; can close
/// the channel, as in Go.
///
/// ```
/// use gort::chan::{Chan, Sender};
/// fn produce(tx: Sender<u32>) {
///     for i in 0..3 {
///         tx.send(i);
///     }
///     tx.close();
/// }
/// let ch = Chan::new(3);
/// produce(ch.sender());
/// assert_eq!(ch.iter().collect::<Vec<_>>(), [0, 1, 2]);
/// ```
pub struct Sender<T> {
    ch: Chan<T>,
}

impl<T> Sender<T> {
    /// See [`Chan::send`].
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(1);
    /// ch.sender().send(1);
    /// assert_eq!(ch.len(), 1);
    /// ```
    pub fn send(&self, v: T) {
        self.ch.send(v)
    }

    /// See [`Chan::try_send`].
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(0);
    /// assert!(ch.sender().try_send(1).is_err());
    /// ```
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.ch.try_send(v)
    }

    /// See [`Chan::send_timeout`].
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(1);
    /// assert!(ch.sender().send_timeout(1, std::time::Duration::from_millis(1)).is_ok());
    /// ```
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.ch.send_timeout(v, timeout)
    }

    /// See [`Chan::close`].
    ///
    /// ```
    /// let ch = gort::chan::Chan::<()>::new(0);
    /// ch.sender().close();
    /// assert!(ch.is_closed());
    /// ```
    pub fn close(&self) {
        self.ch.close()
    }

    /// See [`Chan::len`].
    ///
    /// ```
    /// assert_eq!(gort::chan::Chan::<u8>::new(1).sender().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.ch.len()
    }

    /// See [`Chan::is_empty`].
    ///
    /// ```
    /// assert!(gort::chan::Chan::<u8>::new(1).sender().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ch.is_empty()
    }

    /// See [`Chan::cap`].
    ///
    /// ```
    /// assert_eq!(gort::chan::Chan::<u8>::new(1).sender().cap(), 1);
    /// ```
    pub fn cap(&self) -> usize {
        self.ch.cap()
    }

    /// See [`Chan::is_closed`].
    ///
    /// ```
    /// assert!(!gort::chan::Chan::<u8>::new(1).sender().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.ch.is_closed()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender { ch: self.ch.clone() }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sender({:?})", self.ch)
    }
}

impl<T> From<Chan<T>> for Sender<T> {
    fn from(ch: Chan<T>) -> Self {
        Sender { ch }
    }
}

impl<T> PartialEq for Sender<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ch == other.ch
    }
}

impl<T> Eq for Sender<T> {}

/// The receiving half of a [`Chan`] (Go's `<-chan T`). Cloneable.
///
/// ```
/// use gort::chan::{Chan, Receiver};
/// fn total(rx: Receiver<u32>) -> u32 {
///     rx.iter().sum()
/// }
/// let ch = Chan::new(3);
/// for i in 1..=3 {
///     ch.send(i);
/// }
/// ch.close();
/// assert_eq!(total(ch.receiver()), 6);
/// ```
pub struct Receiver<T> {
    ch: Chan<T>,
}

impl<T> Receiver<T> {
    /// See [`Chan::recv`].
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(1);
    /// ch.send(2);
    /// assert_eq!(ch.receiver().recv(), Some(2));
    /// ```
    pub fn recv(&self) -> Option<T> {
        self.ch.recv()
    }

    /// See [`Chan::try_recv`].
    ///
    /// ```
    /// let ch = gort::chan::Chan::<u8>::new(1);
    /// assert!(ch.receiver().try_recv().is_err());
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.ch.try_recv()
    }

    /// See [`Chan::recv_timeout`].
    ///
    /// ```
    /// let ch = gort::chan::Chan::<u8>::new(1);
    /// assert!(ch.receiver().recv_timeout(std::time::Duration::from_millis(1)).is_err());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.ch.recv_timeout(timeout)
    }

    /// See [`Chan::iter`].
    ///
    /// ```
    /// let ch = gort::chan::Chan::new(1);
    /// ch.send(1);
    /// ch.close();
    /// assert_eq!(ch.receiver().iter().count(), 1);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        self.ch.iter()
    }

    /// See [`Chan::len`].
    ///
    /// ```
    /// assert_eq!(gort::chan::Chan::<u8>::new(1).receiver().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.ch.len()
    }

    /// See [`Chan::is_empty`].
    ///
    /// ```
    /// assert!(gort::chan::Chan::<u8>::new(1).receiver().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ch.is_empty()
    }

    /// See [`Chan::cap`].
    ///
    /// ```
    /// assert_eq!(gort::chan::Chan::<u8>::new(1).receiver().cap(), 1);
    /// ```
    pub fn cap(&self) -> usize {
        self.ch.cap()
    }

    /// See [`Chan::is_closed`].
    ///
    /// ```
    /// assert!(!gort::chan::Chan::<u8>::new(1).receiver().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.ch.is_closed()
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver { ch: self.ch.clone() }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Receiver({:?})", self.ch)
    }
}

impl<T> From<Chan<T>> for Receiver<T> {
    fn from(ch: Chan<T>) -> Self {
        Receiver { ch }
    }
}

impl<T> PartialEq for Receiver<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ch == other.ch
    }
}

impl<T> Eq for Receiver<T> {}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { ch: self.ch }
    }
}

/// Borrowing iterator over received values, ending when the channel is
/// closed and drained. See [`Chan::iter`].
///
/// ```
/// let ch = gort::chan::Chan::new(1);
/// ch.send(1);
/// ch.close();
/// for v in &ch {
///     assert_eq!(v, 1);
/// }
/// ```
pub struct Iter<'a, T> {
    raw: &'a RawChan<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        recv(self.raw)
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iter { .. }")
    }
}

/// Owning iterator over received values (`for v in ch`).
///
/// ```
/// let ch = gort::chan::Chan::new(1);
/// ch.send(1);
/// ch.close();
/// assert_eq!(ch.into_iter().collect::<Vec<_>>(), [1]);
/// ```
pub struct IntoIter<T> {
    ch: Chan<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.ch.recv()
    }
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IntoIter({:?})", self.ch)
    }
}

// ---------------------------------------------------------------------------
// Errors.

/// Why [`Chan::try_send`] failed; carries the value back.
///
/// ```
/// use gort::chan::{Chan, TrySendError};
/// let e = Chan::new(0).try_send(1).unwrap_err();
/// assert!(e.is_full());
/// assert_eq!(e.into_inner(), 1);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// No buffer room and no waiting receiver.
    Full(T),
    /// The channel is closed.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// let e = gort::chan::TrySendError::Full(3);
    /// assert_eq!(e.into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// Whether the channel was full.
    ///
    /// ```
    /// assert!(gort::chan::TrySendError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether the channel was closed.
    ///
    /// ```
    /// assert!(gort::chan::TrySendError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("send on closed channel"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

/// Why [`Chan::try_recv`] failed.
///
/// ```
/// use gort::chan::{Chan, TryRecvError};
/// assert_eq!(Chan::<u8>::new(0).try_recv(), Err(TryRecvError::Empty));
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing buffered and no waiting sender.
    Empty,
    /// The channel is closed and drained.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// Why [`Chan::send_timeout`] failed; carries the value back.
///
/// ```
/// use gort::chan::SendTimeoutError;
/// assert_eq!(SendTimeoutError::Timeout(1).into_inner(), 1);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The timeout passed first.
    Timeout(T),
    /// The channel is closed.
    Closed(T),
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// assert_eq!(gort::chan::SendTimeoutError::Closed('x').into_inner(), 'x');
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting on send operation"),
            SendTimeoutError::Closed(_) => f.write_str("send on closed channel"),
        }
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

/// Why [`Chan::recv_timeout`] failed.
///
/// ```
/// use gort::chan::{Chan, RecvTimeoutError};
/// let ch = Chan::<u8>::new(0);
/// assert_eq!(ch.recv_timeout(std::time::Duration::ZERO), Err(RecvTimeoutError::Timeout));
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// The timeout passed first.
    Timeout,
    /// The channel is closed and drained.
    Closed,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on receive operation"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

// ---------------------------------------------------------------------------
// What `select!` expands to.

/// Entry points for the `select!` macro. Not a stable API.
#[doc(hidden)]
pub mod __select {
    use std::time::{Duration, Instant};

    use super::super::hchan::RawChan;
    pub use super::super::select::{select, Block, Case, RecvCase, SendCase};
    use super::{Chan, Receiver, Sender};

    /// Something `recv(x)` accepts: a [`Chan`] or [`Receiver`], or a
    /// reference to one.
    pub trait SelectRecv {
        /// The element type.
        type Item;
        #[doc(hidden)]
        fn __raw(&self) -> &RawChan<Self::Item>;
    }

    /// Something `send(x, v)` accepts: a [`Chan`] or [`Sender`], or a
    /// reference to one.
    pub trait SelectSend {
        /// The element type.
        type Item;
        #[doc(hidden)]
        fn __raw(&self) -> &RawChan<Self::Item>;
    }

    impl<T> SelectRecv for Chan<T> {
        type Item = T;
        fn __raw(&self) -> &RawChan<T> {
            self.raw()
        }
    }
    impl<T> SelectRecv for Receiver<T> {
        type Item = T;
        fn __raw(&self) -> &RawChan<T> {
            self.ch.raw()
        }
    }
    impl<C: SelectRecv + ?Sized> SelectRecv for &C {
        type Item = C::Item;
        fn __raw(&self) -> &RawChan<C::Item> {
            (**self).__raw()
        }
    }
    impl<T> SelectSend for Chan<T> {
        type Item = T;
        fn __raw(&self) -> &RawChan<T> {
            self.raw()
        }
    }
    impl<T> SelectSend for Sender<T> {
        type Item = T;
        fn __raw(&self) -> &RawChan<T> {
            self.ch.raw()
        }
    }
    impl<C: SelectSend + ?Sized> SelectSend for &C {
        type Item = C::Item;
        fn __raw(&self) -> &RawChan<C::Item> {
            (**self).__raw()
        }
    }

    /// A `recv(c)` arm.
    pub fn recv<C: SelectRecv + ?Sized>(c: &C) -> RecvCase<'_, C::Item> {
        RecvCase::new(c.__raw())
    }

    /// A `send(c, v)` arm.
    pub fn send<C: SelectSend + ?Sized>(c: &C, v: C::Item) -> SendCase<'_, C::Item> {
        SendCase::new(c.__raw(), v)
    }

    /// `default(timeout)`.
    pub fn deadline(timeout: Duration) -> Block {
        crate::preempt_point();
        match Instant::now().checked_add(timeout) {
            Some(d) => Block::Until(d),
            None => Block::Forever,
        }
    }

    /// A select with a `default` arm.
    pub fn nonblocking() -> Block {
        Block::No
    }

    /// A select without `default`.
    pub fn blocking() -> Block {
        crate::preempt_point();
        Block::Forever
    }

    /// `select! {}`: blocks forever (wait reason `select (no cases)`).
    pub fn block() -> ! {
        crate::sync::wake::park_forever(crate::sync::wake::Reason::SelectNoCases)
    }
}
