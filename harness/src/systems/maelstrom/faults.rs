//! What only a router can do to single messages (a proxy sees bytes, not
//! messages): lose one, deliver one twice, let one be overtaken, delay one.
//! The decision per message is pure and seeded: the same seed and the same
//! sequence of messages on a link give the same fates.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-message faults of one directed link. All probabilities are in `[0, 1]`;
/// the default is no fault at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageFaults {
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is held back and delivered right after the
    /// next message on its link (or after [`REORDER_WINDOW`] if none comes).
    pub reorder: f64,
    /// Probability that a message is delayed by `delay_ms` plus a uniform
    /// jitter in `0..=jitter_ms`; later messages may overtake it.
    pub delay: f64,
    pub delay_ms: u64,
    pub jitter_ms: u64,
}

/// How long a held-back message waits for a successor to swap with.
pub const REORDER_WINDOW: Duration = Duration::from_millis(100);

/// The fate of one message under [`MessageFaults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Drop,
    Deliver {
        /// 1, or 2 when duplicated.
        copies: u8,
        /// Extra delay before the message joins its link's queue.
        delay: Option<Duration>,
        /// Hold it back to swap with the next message.
        reorder: bool,
    },
}

/// Bad fault parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("message fault {name} = {value} is not a probability in [0, 1]")]
pub struct BadProbability {
    pub name: &'static str,
    pub value: f64,
}

impl MessageFaults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn validate(&self) -> Result<(), BadProbability> {
        for (name, value) in [
            ("drop", self.drop),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("delay", self.delay),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(BadProbability { name, value });
            }
        }
        Ok(())
    }

    pub fn is_none(&self) -> bool {
        self.drop <= 0.0 && self.duplicate <= 0.0 && self.reorder <= 0.0 && self.delay <= 0.0
    }

    /// Draws one message's fate. Always consumes the same number of random
    /// values, so that changing one probability does not shift the others'
    /// draws.
    pub fn decide(&self, rng: &mut impl Rng) -> Fate {
        let (d, dup, re, del): (f64, f64, f64, f64) = (rng.gen(), rng.gen(), rng.gen(), rng.gen());
        let jitter = rng.gen_range(0..=self.jitter_ms);
        if d < self.drop {
            return Fate::Drop;
        }
        Fate::Deliver {
            copies: if dup < self.duplicate { 2 } else { 1 },
            delay: (del < self.delay).then(|| Duration::from_millis(self.delay_ms + jitter)),
            reorder: re < self.reorder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn fates(f: &MessageFaults, seed: u64, n: usize) -> Vec<Fate> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| f.decide(&mut rng)).collect()
    }

    #[test]
    fn no_faults_deliver_everything_once_and_certain_faults_always_fire() {
        let plain = Fate::Deliver {
            copies: 1,
            delay: None,
            reorder: false,
        };
        assert!(fates(&MessageFaults::none(), 1, 100)
            .iter()
            .all(|f| *f == plain));
        let all = MessageFaults {
            drop: 1.0,
            ..Default::default()
        };
        assert!(fates(&all, 1, 100).iter().all(|f| *f == Fate::Drop));
        let f = MessageFaults {
            duplicate: 1.0,
            reorder: 1.0,
            delay: 1.0,
            delay_ms: 10,
            jitter_ms: 5,
            ..Default::default()
        };
        for fate in fates(&f, 2, 100) {
            let Fate::Deliver {
                copies: 2,
                delay: Some(d),
                reorder: true,
            } = fate
            else {
                panic!("{fate:?}");
            };
            assert!((10..=15).contains(&(d.as_millis() as u64)));
        }
    }

    #[test]
    fn fates_are_seeded_and_roughly_follow_the_probability() {
        let f = MessageFaults {
            drop: 0.3,
            ..Default::default()
        };
        assert_eq!(fates(&f, 7, 500), fates(&f, 7, 500));
        assert_ne!(fates(&f, 7, 500), fates(&f, 8, 500));
        let dropped = fates(&f, 7, 10_000)
            .iter()
            .filter(|f| **f == Fate::Drop)
            .count();
        assert!((2_500..3_500).contains(&dropped), "{dropped}");
    }

    #[test]
    fn probabilities_outside_zero_one_are_rejected() {
        assert!(MessageFaults::none().validate().is_ok());
        let bad = MessageFaults {
            duplicate: 1.5,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().name, "duplicate");
        assert!(MessageFaults {
            drop: f64::NAN,
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
