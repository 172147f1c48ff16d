//! Wake-ups for apalis workers that are not lost.
//!
//! apalis's poll strategies consume a wake-up even while a fetch is already in flight; a
//! task committed during that fetch is then only seen at the next interval poll (up to a
//! second later). [`Nudge`] answers every wake-up twice: at once, and again shortly after,
//! when any in-flight fetch has finished.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};

const AGAIN_AFTER: Duration = Duration::from_millis(5);

pub(crate) struct Nudge<S> {
    inner: S,
    again: Option<Pin<Box<tokio::time::Sleep>>>,
    ended: bool,
}

impl<S> Nudge<S> {
    pub(crate) fn new(inner: S) -> Self {
        Nudge {
            inner,
            again: None,
            ended: false,
        }
    }
}

impl<S: Stream + Unpin> Stream for Nudge<S> {
    type Item = ();

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let mut woke = false;
        while !self.ended {
            match self.inner.poll_next_unpin(cx) {
                Poll::Ready(Some(_)) => woke = true,
                // The source is gone (e.g. the LISTEN connection): the interval poll remains.
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => break,
            }
        }
        if woke {
            self.again = Some(Box::pin(tokio::time::sleep(AGAIN_AFTER)));
            if let Some(t) = self.again.as_mut() {
                // Register the timer with this task's waker.
                let _ = t.as_mut().poll(cx);
            }
            return Poll::Ready(Some(()));
        }
        if let Some(t) = self.again.as_mut()
            && t.as_mut().poll(cx).is_ready()
        {
            self.again = None;
            return Poll::Ready(Some(()));
        }
        Poll::Pending
    }
}
