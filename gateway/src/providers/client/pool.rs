//! Connections kept open between requests, and the reply body that drives its connection.
//!
//! hyper's HTTP/1 connection is a future that must be polled for bytes to move. Spawned as a
//! task of its own (as reqwest and hyper-util's client do), every request and every body chunk
//! crosses between two tasks, each crossing a wake-up and often a switch between threads. Here
//! the task that waits for the reply polls the connection itself, beside the response: the
//! bytes move in the same poll that reads them.

use std::collections::HashMap;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::{Connection, SendRequest};

use super::HttpError;
use super::connect::Io;

/// How long an unused connection is kept (reqwest's default, which the gateway used before).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The most unused connections kept per upstream.
const MAX_IDLE_PER_UPSTREAM: usize = 256;

/// One HTTP/1.1 connection: the sender and the connection future, driven by whoever uses it.
pub struct Conn {
    pub send: SendRequest<Full<Bytes>>,
    /// `None` once the connection has ended.
    driver: Option<Connection<Io, Full<Bytes>>>,
}

impl Conn {
    pub fn new(send: SendRequest<Full<Bytes>>, driver: Connection<Io, Full<Bytes>>) -> Conn {
        Conn { send, driver: Some(driver) }
    }

    /// Moves the connection's bytes; `Err` once it has ended with an error. After a clean end the
    /// sender and the response report that it is closed.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> Result<(), HttpError> {
        let Some(driver) = &mut self.driver else { return Ok(()) };
        match Pin::new(driver).poll(cx) {
            Poll::Pending => Ok(()),
            Poll::Ready(result) => {
                self.driver = None;
                result.map_err(|e| HttpError::from_hyper(&e))
            }
        }
    }

    /// Waits until the connection can take a request; `Err` if it closed meanwhile.
    pub async fn ready(&mut self) -> Result<(), HttpError> {
        std::future::poll_fn(|cx| {
            self.drive(cx)?;
            self.send.poll_ready(cx).map_err(|e| HttpError::from_hyper(&e))
        })
        .await
    }

    fn is_open(&mut self) -> bool {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        self.drive(&mut cx).is_ok() && self.driver.is_some() && !self.send.is_closed()
    }
}

/// Unused connections by upstream (scheme, authority and route), the most recently used first.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<Arc<str>, Vec<Idle>>>,
}

/// A connection and since when it has waited.
type Idle = (Conn, Instant);

impl Pool {
    /// An open, recently used connection to `upstream`, if one is waiting.
    pub fn checkout(&self, upstream: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = idle.get_mut(upstream)?;
        while let Some((mut conn, since)) = waiting.pop() {
            if since.elapsed() < IDLE_TIMEOUT && conn.is_open() {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, upstream: &Arc<str>, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = idle.entry(upstream.clone()).or_default();
        if waiting.len() >= MAX_IDLE_PER_UPSTREAM {
            // The oldest goes; it is the likeliest to have been closed by the upstream.
            waiting.remove(0);
        }
        waiting.push((conn, Instant::now()));
    }
}

/// A reply body, read within the request's deadline. Reading it drives its connection, which
/// goes back to the pool once the body has ended; dropped before the end, the connection closes.
pub struct ResponseBody {
    body: Incoming,
    conn: Option<Conn>,
    home: Option<(Arc<Pool>, Arc<str>)>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl ResponseBody {
    pub fn new(
        body: Incoming,
        conn: Conn,
        home: (Arc<Pool>, Arc<str>),
        deadline: Pin<Box<tokio::time::Sleep>>,
    ) -> ResponseBody {
        ResponseBody { body, conn: Some(conn), home: Some(home), deadline }
    }

    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, HttpError>> {
        loop {
            if let Some(conn) = &mut self.conn {
                // An error reaches the body too, with the same cause: the body's is returned.
                let _ = conn.drive(cx);
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Poll::Ready(Ok(Some(data))),
                    _ => {}
                },
                Poll::Ready(Some(Err(error))) => {
                    self.conn = None;
                    return Poll::Ready(Err(HttpError::from_hyper(&error)));
                }
                Poll::Ready(None) => {
                    self.release();
                    return Poll::Ready(Ok(None));
                }
                Poll::Pending => {
                    return match self.deadline.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            self.conn = None;
                            Poll::Ready(Err(HttpError::Timeout))
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }

    /// The body has ended: its connection can serve the next request.
    fn release(&mut self) {
        if let (Some(mut conn), Some((pool, upstream))) = (self.conn.take(), self.home.take())
            && conn.is_open()
        {
            pool.checkin(&upstream, conn);
        }
    }
}

impl Stream for ResponseBody {
    type Item = Result<Bytes, HttpError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx).map(Result::transpose)
    }
}
