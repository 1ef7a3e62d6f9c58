//! One rendition in time: populations integrated step by step through dense and sparse
//! projections, and the noise drawn for a set of renditions before they run.

use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::circuit::{CircuitBlueprint, Projection};
use crate::{Noise, PopulationModel, Real, StreamRng, Synapse};

/// `u += W x` for each of the columns of `u` (`rows` each) and `x` (`cols` each), `W`
/// column-major `rows × cols`, skipping presynaptic units that are silent: a sparse input
/// such as a timing population's bursts costs only its active units.
fn accumulate<T: Real>(u: &mut [T], w: &[T], x: &[T], rows: usize, cols: usize) {
    for (u, x) in u.chunks_exact_mut(rows).zip(x.chunks_exact(cols)) {
        for (j, &xj) in x.iter().enumerate() {
            if xj != T::zero() {
                let column = &w[j * rows..(j + 1) * rows];
                u.iter_mut().zip(column).for_each(|(u, &w)| *u += xj * w);
            }
        }
    }
}

/// `u += W x` through a dense or sparse projection, one column.
pub(super) fn project<T: Real>(proj: &Projection<T>, x: &[T], u: &mut [T]) {
    match &proj.sparse {
        Some(s) => s.structure.accumulate(&s.values, x, u),
        None => accumulate(u, proj.weights.as_slice(), x, u.len(), x.len()),
    }
}

/// `λ += Wᵀ δ` through a dense or sparse projection, one column.
pub(super) fn project_back<T: Real>(proj: &Projection<T>, delta: &[T], lambda: &mut [T]) {
    match &proj.sparse {
        Some(s) => s.structure.accumulate_transposed(&s.values, delta, lambda),
        None => {
            let rows = delta.len();
            for (l, column) in lambda.iter_mut().zip(proj.weights.as_slice().chunks_exact(rows)) {
                *l += column.iter().zip(delta).map(|(&w, &d)| w * d).sum::<T>();
            }
        }
    }
}

/// One rendition's columns of every population's matrices.
pub(super) struct Columns<'a, T> {
    pub(super) act: Vec<&'a mut [T]>,
    pub(super) u: Vec<&'a mut [T]>,
    pub(super) noise: Vec<&'a mut [T]>,
}

/// Splits each matrix into its renditions' column blocks (`steps` columns each); matrices
/// left empty give empty blocks.
pub(super) fn blocks<T>(matrices: &mut [DMatrix<T>], steps: usize, batch: usize) -> Vec<Vec<&mut [T]>> {
    let mut out: Vec<Vec<&mut [T]>> = (0..batch).map(|_| Vec::with_capacity(matrices.len())).collect();
    for m in matrices.iter_mut() {
        let rows = m.nrows();
        if m.is_empty() {
            out.iter_mut().for_each(|o| o.push(&mut []));
        } else {
            for (o, block) in out.iter_mut().zip(m.as_mut_slice().chunks_mut(rows * steps)) {
                o.push(block);
            }
        }
    }
    out
}

/// Everything one rendition's dynamics read and never change.
pub(super) struct Dynamics<'a, T: Real> {
    pub(super) bp: &'a CircuitBlueprint,
    pub(super) projections: &'a [Projection<T>],
    pub(super) delays: &'a [usize],
    pub(super) retention: &'a [T],
    pub(super) perturbed: &'a [bool],
    pub(super) dt: f64,
    pub(super) steps: usize,
    pub(super) noisy: bool,
    /// For projections from noise sources in noisy renditions: what the source's mean
    /// activity delivers per step (the weights' row sums times `λ dt`).
    pub(super) mean_drive: &'a [Option<Vec<T>>],
}

impl<T: Real> Dynamics<'_, T> {
    /// Runs one rendition, its noise already drawn into `r.noise` (and a noise source's
    /// spikes into `r.act`).
    pub(super) fn run(&self, r: Columns<'_, T>) {
        let Columns {
            mut act,
            mut u,
            mut noise,
        } = r;
        let (bp, dt, steps) = (self.bp, self.dt, self.steps);
        let size_of = |p: usize| bp.populations()[p].size;
        // Synaptic traces (current or conductance) and the traces a source's mean would
        // leave, per projection; refractory steps left per spiking neuron: all start at rest.
        let mut traces: Vec<Vec<T>> = bp
            .projections()
            .iter()
            .map(|spec| match spec.synapse {
                Synapse::Instant => Vec::new(),
                _ => vec![T::zero(); size_of(spec.post)],
            })
            .collect();
        let mut mean_traces: Vec<Vec<T>> = self
            .mean_drive
            .iter()
            .map(|d| d.as_ref().map_or_else(Vec::new, |d| vec![T::zero(); d.len()]))
            .collect();
        let mut refractory: Vec<Vec<u32>> = bp
            .populations()
            .iter()
            .map(|pop| {
                if pop.model.is_spiking() {
                    vec![0; pop.size]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let widest = bp.populations().iter().map(|p| p.size).max().unwrap_or(0);
        let mut scratch = vec![T::zero(); 6 * widest];
        for t in 0..steps {
            for &p in bp.order() {
                let pop = &bp.populations()[p];
                if bp.is_input(p) || pop.model.is_source() {
                    continue;
                }
                let size = pop.size;
                let here = t * size..(t + 1) * size;
                // The current (instant and current-based synapses) and, for a membrane, the
                // conductances and their reversal-weighted sum; what noise sources delivered
                // beyond their mean; one projection's instant input; f(u).
                let (current, rest) = scratch.split_at_mut(widest);
                let (conductance, rest) = rest.split_at_mut(widest);
                let (driven, rest) = rest.split_at_mut(widest);
                let (received, rest) = rest.split_at_mut(widest);
                let (instant, f) = rest.split_at_mut(widest);
                let (current, conductance, driven) = (
                    &mut current[..size],
                    &mut conductance[..size],
                    &mut driven[..size],
                );
                let (received, instant, f) = (&mut received[..size], &mut instant[..size], &mut f[..size]);
                current.fill(T::zero());
                conductance.fill(T::zero());
                driven.fill(T::zero());
                received.fill(T::zero());
                for &q in bp.incoming(p) {
                    let spec = &bp.projections()[q];
                    let proj = &self.projections[q];
                    let keep = T::of(spec.synapse.retention(dt));
                    // A delayed projection reads its presynaptic activity `delay` steps back;
                    // before the rendition's start there was none.
                    let Some(then) = t.checked_sub(self.delays[q]) else {
                        traces[q].iter_mut().for_each(|s| *s *= keep);
                        continue;
                    };
                    if let Some(drive) = &self.mean_drive[q] {
                        let mean = &mut mean_traces[q];
                        mean.iter_mut().zip(drive).for_each(|(m, &d)| *m = keep * *m + d);
                    }
                    let pre_size = size_of(spec.pre);
                    let pre = &act[spec.pre][then * pre_size..(then + 1) * pre_size];
                    let delivered: &[T] = match spec.synapse {
                        Synapse::Instant => {
                            instant.fill(T::zero());
                            project(proj, pre, instant);
                            current.iter_mut().zip(instant.iter()).for_each(|(c, &i)| *c += i);
                            instant
                        }
                        synapse => {
                            let trace = &mut traces[q];
                            trace.iter_mut().for_each(|s| *s *= keep);
                            project(proj, pre, trace);
                            if let Synapse::Conductance { reversal, .. } = synapse {
                                let e = T::of(reversal);
                                for ((g, d), &s) in
                                    conductance.iter_mut().zip(driven.iter_mut()).zip(trace.iter())
                                {
                                    *g += s;
                                    *d += s * e;
                                }
                            } else {
                                current.iter_mut().zip(trace.iter()).for_each(|(c, &s)| *c += s);
                            }
                            trace
                        }
                    };
                    if self.mean_drive[q].is_some() {
                        for ((r, &d), &m) in received.iter_mut().zip(delivered).zip(mean_traces[q].iter()) {
                            *r += d - m;
                        }
                    }
                    if let Some(bias) = &proj.bias {
                        current.iter_mut().zip(bias.iter()).for_each(|(u, &b)| *u += b);
                    }
                }
                let state = &mut u[p][here.clone()];
                state.copy_from_slice(current);
                if self.noisy && self.perturbed[p] {
                    // The intrinsic noise was drawn before the rendition; what noise sources
                    // delivered beyond their mean is already in the input.
                    let n = &mut noise[p][here.clone()];
                    state.iter_mut().zip(n.iter()).for_each(|(u, &n)| *u += n);
                    n.iter_mut().zip(received.iter()).for_each(|(n, &r)| *n += r);
                }
                if let PopulationModel::Lif(lif) = pop.model {
                    // `u` holds the current; the membrane potential replaces it in the record.
                    let (before, now) = u[p].split_at_mut(here.start);
                    let previous = (t > 0).then(|| &before[here.start - size..]);
                    let spikes = &mut act[p][here];
                    let refractory = &mut refractory[p];
                    let hold = (lif.refractory / dt).round() as u32;
                    let (tau, r) = (lif.tau_m, lif.resistance);
                    for k in 0..size {
                        let v_then = previous.map_or(lif.v_rest, |v| v[k].f64());
                        let (i, g, ge) = (now[k].f64(), conductance[k].f64(), driven[k].f64());
                        let (v, spike) = if refractory[k] > 0 {
                            refractory[k] -= 1;
                            (lif.v_reset, false)
                        } else {
                            let leak = 1.0 + r * g;
                            let v_inf = (lif.v_rest + r * i + r * ge) / leak;
                            let v = v_inf + (v_then - v_inf) * (-dt * leak / tau).exp();
                            if v >= lif.v_threshold {
                                refractory[k] = hold;
                                (lif.v_reset, true)
                            } else {
                                (v, false)
                            }
                        };
                        now[k] = T::of(v);
                        spikes[k] = if spike { T::one() } else { T::zero() };
                    }
                    continue;
                }
                pop.activation.apply_columns(size, &u[p][here.clone()], f);
                let rho = self.retention[p];
                let gain = T::one() - rho;
                let a = &mut act[p];
                if rho == T::zero() || t == 0 {
                    // A leaky unit starts from rest: r(0) = (1 − ρ) f(u(0)).
                    a[here].iter_mut().zip(f.iter()).for_each(|(a, &f)| *a = gain * f);
                } else {
                    let (before, now) = a.split_at_mut(here.start);
                    let previous = &before[here.start - size..];
                    for ((a, &r), &f) in now[..size].iter_mut().zip(previous).zip(f.iter()) {
                        *a = rho * r + gain * f;
                    }
                }
            }
        }
    }
}

/// Draws a population's noise for `batch` renditions of `steps` steps, rendition-major:
/// a noise source's spikes into `act`, intrinsic noise into `noise` (zero for a population
/// perturbed only by sources). Values come from the population's stream in the order step,
/// rendition, unit, the Ornstein–Uhlenbeck state first drawn from its stationary law.
pub(super) fn draw_noise<T: Real>(
    pop: &crate::Population,
    rng: &mut StreamRng,
    steps: usize,
    batch: usize,
    dt: f64,
    act: &mut DMatrix<T>,
    noise: &mut DMatrix<T>,
) {
    let size = pop.size;
    let at = |t: usize, b: usize| (b * steps + t) * size;
    if pop.model.is_source() {
        let chance = pop.model.spike_probability(dt);
        let act = act.as_mut_slice();
        for t in 0..steps {
            for b in 0..batch {
                for a in &mut act[at(t, b)..at(t, b) + size] {
                    let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
                    *a = if u < chance { T::one() } else { T::zero() };
                }
            }
        }
        return;
    }
    if noise.is_empty() {
        return;
    }
    let noise = noise.as_mut_slice();
    match pop.noise {
        Noise::None => noise.fill(T::zero()),
        Noise::OrnsteinUhlenbeck { std, tau } => {
            let rho = (-dt / tau).exp();
            let kick = std * (1.0 - rho * rho).sqrt();
            let mut state: Vec<T> = (0..size * batch)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(rng);
                    T::of(std * z)
                })
                .collect();
            for t in 0..steps {
                for b in 0..batch {
                    let states = &mut state[b * size..(b + 1) * size];
                    for (s, out) in states.iter_mut().zip(&mut noise[at(t, b)..at(t, b) + size]) {
                        let z: f64 = StandardNormal.sample(rng);
                        *s = *s * T::of(rho) + T::of(kick * z);
                        *out = *s;
                    }
                }
            }
        }
        other => {
            let std = other.std();
            for t in 0..steps {
                for b in 0..batch {
                    for out in &mut noise[at(t, b)..at(t, b) + size] {
                        let z: f64 = StandardNormal.sample(rng);
                        *out = T::of(std * z);
                    }
                }
            }
        }
    }
}
