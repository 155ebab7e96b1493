//! How the operator and the gateway reconnect their watches: doubling waits from 250 ms, capped
//! at 2 s. kube's default (client-go's, up to 30 s) is kind to a struggling API server, but with
//! one watch per kind there is little load to spare it, and it left both blind for up to half a
//! minute after an API server came back.

use std::time::Duration;

use kube::runtime::utils::Backoff;

const FIRST: Duration = Duration::from_millis(250);
const LONGEST: Duration = Duration::from_secs(2);

/// The wait before each reconnect; reset once a watch works again.
#[derive(Clone, Debug)]
pub struct WatchBackoff(Duration);

impl Default for WatchBackoff {
    fn default() -> WatchBackoff {
        WatchBackoff(FIRST)
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.0;
        self.0 = (wait * 2).min(LONGEST);
        Some(wait)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.0 = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_start_over_after_a_reset() {
        let mut backoff = WatchBackoff::default();
        let waits: Vec<u128> = backoff.by_ref().take(6).map(|w| w.as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST));
    }
}
