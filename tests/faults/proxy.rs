//! A TCP forwarder between kim and the test SMTP server, so the relay can
//! become unreachable (connections refused, open ones cut) and come back on
//! the same port.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Proxy {
    pub port: u16,
    /// Where new connections go (open ones stay where they went).
    target: Arc<Mutex<SocketAddr>>,
    stop: Arc<AtomicBool>,
    /// Open connections (both ends), by number, to cut them on `down`.
    conns: Arc<Mutex<HashMap<u64, [TcpStream; 2]>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `port` (loopback) and forwards to `target`.
    pub fn start(port: u16, target: SocketAddr) -> Self {
        let mut p = Self {
            port,
            target: Arc::new(Mutex::new(target)),
            stop: Arc::default(),
            conns: Arc::default(),
            acceptor: None,
        };
        p.up();
        p
    }

    /// Listens again (after `down`).
    pub fn up(&mut self) {
        if self.acceptor.is_some() {
            return;
        }
        // The port was ours a moment ago; binding may race a TIME_WAIT or
        // the old listener's close for a few milliseconds.
        let started = Instant::now();
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(_) if started.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("proxy cannot listen on {} again: {e}", self.port),
            }
        };
        listener.set_nonblocking(true).unwrap();
        self.stop = Arc::default();
        let stop = self.stop.clone();
        let conns = self.conns.clone();
        let target = self.target.clone();
        self.acceptor = Some(std::thread::spawn(move || {
            let mut next = 0u64;
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        inbound.set_nonblocking(false).unwrap();
                        let to = *target.lock().unwrap();
                        let Ok(outbound) = TcpStream::connect(to) else {
                            continue;
                        };
                        next += 1;
                        conns.lock().unwrap().insert(
                            next,
                            [inbound.try_clone().unwrap(), outbound.try_clone().unwrap()],
                        );
                        pipe(
                            inbound.try_clone().unwrap(),
                            outbound.try_clone().unwrap(),
                            None,
                        );
                        pipe(outbound, inbound, Some((conns.clone(), next)));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }

    /// Sends new connections to `target` from now on.
    pub fn retarget(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
    }

    /// Stops listening (new connections are refused) and cuts every open
    /// connection.
    pub fn down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for (_, pair) in self.conns.lock().unwrap().drain() {
            for c in pair {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

type Forget = (Arc<Mutex<HashMap<u64, [TcpStream; 2]>>>, u64);

/// Copies `from` to `to` until either end closes; then forgets the
/// connection (`forget`: the list and its number).
fn pipe(mut from: TcpStream, mut to: TcpStream, forget: Option<Forget>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
        if let Some((conns, n)) = forget {
            conns.lock().unwrap().remove(&n);
        }
    });
}
