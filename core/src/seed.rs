//! Named, seeded random streams.
//!
//! Every source of randomness in a run (each projection's initial weights, each population's
//! intrinsic noise, the task's inputs, the teacher's noise) draws from its own stream, derived
//! from the run seed and a stable name. Adding a population therefore does not change the
//! noise any other population sees, and the same scenario and seed give the same numbers on
//! every platform: the generator is Xoshiro256++, portable by construction, and the derivation
//! uses SplitMix64 over the name's bytes rather than `std`'s unstable hasher.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator behind every stream.
pub type StreamRng = Xoshiro256PlusPlus;

/// Derives independent generators from one run seed and stream names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedStreams {
    seed: u64,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SeedStreams {
    /// Streams for a run with this seed.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The run seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The generator for the stream called `name` (for example `"noise/hidden"`).
    pub fn stream(&self, name: &str) -> StreamRng {
        let mut state = splitmix64(self.seed);
        for chunk in name.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            state = splitmix64(state ^ u64::from_le_bytes(word));
        }
        state = splitmix64(state ^ name.len() as u64);
        StreamRng::seed_from_u64(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_name_same_numbers_other_name_other_numbers() {
        let streams = SeedStreams::new(7);
        let a: Vec<u64> = (0..4).map(|_| streams.stream("noise/h").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut h = streams.stream("noise/h");
        let mut y = streams.stream("noise/y");
        assert_ne!(h.next_u64(), y.next_u64());
        let mut other_seed = SeedStreams::new(8).stream("noise/h");
        assert_ne!(streams.stream("noise/h").next_u64(), other_seed.next_u64());
    }

    #[test]
    fn streams_are_portable() {
        // Pinned values: the first draws of named streams for seed 1, computed once and written
        // here. If this fails, the derivation of streams or the generator changed, and with it
        // every recorded run (initial weights, noise, data order). Only update these on
        // purpose, as a documented change of the random streams. The numbers were checked against
        // an independent Python implementation of the SplitMix64 derivation and Xoshiro256++.
        let first = |seed: u64, name: &str| {
            let mut rng = SeedStreams::new(seed).stream(name);
            [rng.next_u64(), rng.next_u64()]
        };
        assert_eq!(first(1, "init/W1"), [602726509303751124, 9827051525517799270]);
        assert_eq!(first(1, "noise/h"), [3671437178441962165, 14488138002375724764]);
        assert_eq!(
            first(42, "task/shuffle"),
            [13005257957954869202, 383035806908134611]
        );
    }
}
