//! What is measured on a network's spikes: each neuron's rate and the irregularity of its
//! firing (the coefficient of variation of its inter-spike intervals), as in Brette et al.
//! (2007) and the Brian2 and NEST references.

use super::Spike;

/// Per-neuron firing of one population over a stretch of network time.
#[derive(Debug, Clone, PartialEq)]
pub struct FiringStatistics {
    /// Each neuron's rate, Hz.
    pub rates: Vec<f64>,
    /// Each neuron's ISI coefficient of variation (sample standard deviation over mean of
    /// its intervals); NaN for a neuron with fewer than three spikes (two intervals).
    pub cv: Vec<f64>,
}

impl FiringStatistics {
    /// Measures population `population` (of `size` neurons) from `spikes` (sorted by step, as
    /// [`super::SpikingNetwork::run`] returns them) over `steps` steps of `dt` ms.
    pub fn measure(spikes: &[Spike], population: u32, size: usize, steps: u64, dt: f64) -> Self {
        let mut tally = FiringTally::new(population, size);
        tally.add(spikes);
        tally.statistics(steps, dt)
    }

    /// The population's mean rate, Hz.
    pub fn mean_rate(&self) -> f64 {
        self.rates.iter().sum::<f64>() / self.rates.len().max(1) as f64
    }

    /// The mean CV over neurons that have one (NaN if none does).
    pub fn mean_cv(&self) -> f64 {
        let known: Vec<f64> = self.cv.iter().copied().filter(|c| !c.is_nan()).collect();
        if known.is_empty() {
            f64::NAN
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        }
    }
}

/// Firing statistics gathered while a network runs, chunk of spikes by chunk, in memory
/// proportional to the neurons rather than to the spikes: per neuron its spike count, last
/// spike and the running mean and sum of squared deviations of its intervals (Welford).
#[derive(Debug, Clone)]
pub struct FiringTally {
    population: u32,
    count: Vec<u64>,
    last: Vec<u64>,
    mean: Vec<f64>,
    squares: Vec<f64>,
}

impl FiringTally {
    /// An empty tally of population `population` of `size` neurons.
    pub fn new(population: u32, size: usize) -> Self {
        Self {
            population,
            count: vec![0; size],
            last: vec![0; size],
            mean: vec![0.0; size],
            squares: vec![0.0; size],
        }
    }

    /// Adds the population's spikes among `spikes` (in step order, later than those added so
    /// far).
    pub fn add(&mut self, spikes: &[Spike]) {
        for s in spikes.iter().filter(|s| s.population == self.population) {
            let k = s.neuron as usize;
            if self.count[k] > 0 {
                let interval = (s.step - self.last[k]) as f64;
                let intervals = self.count[k] as f64;
                let delta = interval - self.mean[k];
                self.mean[k] += delta / intervals;
                self.squares[k] += delta * (interval - self.mean[k]);
            }
            self.count[k] += 1;
            self.last[k] = s.step;
        }
    }

    /// Rates and CVs over `steps` steps of `dt` ms (the CV does not depend on the unit of the
    /// intervals, counted here in steps).
    pub fn statistics(&self, steps: u64, dt: f64) -> FiringStatistics {
        let seconds = steps as f64 * dt / 1000.0;
        let rates = self.count.iter().map(|&n| n as f64 / seconds).collect();
        let cv = (0..self.count.len())
            .map(|k| {
                let intervals = self.count[k].saturating_sub(1);
                if intervals < 2 {
                    return f64::NAN;
                }
                (self.squares[k] / (intervals - 1) as f64).sqrt() / self.mean[k]
            })
            .collect();
        FiringStatistics { rates, cv }
    }
}

/// The fraction of `values` (NaN left out) in each of the bins `edges[k]..edges[k + 1]`
/// (the last bin includes its upper edge; values outside the edges count in no bin).
pub fn histogram(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let known: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let bins = edges.len().saturating_sub(1);
    let mut counts = vec![0usize; bins];
    for v in &known {
        let last = bins.saturating_sub(1);
        if let Some(k) =
            (0..bins).find(|&k| *v >= edges[k] && (*v < edges[k + 1] || (k == last && *v <= edges[k + 1])))
        {
            counts[k] += 1;
        }
    }
    counts
        .iter()
        .map(|&c| c as f64 / known.len().max(1) as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_cvs_of_known_trains() {
        let spike = |step, neuron| Spike {
            step,
            population: 0,
            neuron,
        };
        // Neuron 0 fires every 100 steps (CV 0); neuron 1 at intervals 10, 30 (CV = sd/mean =
        // 14.142/20); neuron 2 twice (no CV); neuron 3 never.
        let mut spikes: Vec<Spike> = (0..10).map(|k| spike(k * 100, 0)).collect();
        spikes.extend([spike(0, 1), spike(10, 1), spike(40, 1), spike(5, 2), spike(7, 2)]);
        spikes.push(Spike {
            step: 3,
            population: 1,
            neuron: 0,
        });
        spikes.sort();
        let stats = FiringStatistics::measure(&spikes, 0, 4, 10_000, 0.1);
        assert_eq!(stats.rates, vec![10.0, 3.0, 2.0, 0.0]);
        assert_eq!(stats.cv[0], 0.0);
        assert!((stats.cv[1] - 200f64.sqrt() / 20.0).abs() < 1e-12);
        assert!(stats.cv[2].is_nan() && stats.cv[3].is_nan());
        assert_eq!(stats.mean_rate(), 15.0 / 4.0);
        assert!((stats.mean_cv() - 200f64.sqrt() / 40.0).abs() < 1e-12);
        assert_eq!(
            histogram(&[0.0, 0.5, 1.0, 2.0, f64::NAN], &[0.0, 1.0, 2.0]),
            vec![0.5, 0.5]
        );
        // Tallied in chunks, as a network run does bin by bin: the same rates and CVs.
        let mut tally = FiringTally::new(0, 4);
        for chunk in spikes.chunks(3) {
            tally.add(chunk);
        }
        let chunked = tally.statistics(10_000, 0.1);
        assert_eq!(chunked.rates, stats.rates);
        for (a, b) in chunked.cv.iter().zip(&stats.cv) {
            assert!(a.is_nan() && b.is_nan() || (a - b).abs() < 1e-15);
        }
    }
}
