//! # npsim-plugin
//!
//! Why one long file: the C-compatible interface and the safe views over it must change
//! together (one interface version); the file is the crate.
//!
//! Write an npsim learning rule in its own crate, compile it as a shared library, and use it
//! from a scenario with `rule: Plugin(path: "...", name: "...", params: "...")`.
//!
//! A plugin is a normal Rust `impl` of [`Rule`] plus one [`export_rules!`] line:
//!
//! ```ignore
//! use npsim_plugin::{Context, Rule, Scalar, Params, export_rules};
//!
//! pub struct Hebbian { rate: f64 }
//!
//! impl Rule for Hebbian {
//!     const NAME: &'static str = "hebbian";
//!     const DOC: &'static str = "ΔW = η post preᵀ";
//!     const PARAMS: &'static str = "learning_rate: η (required)";
//!     const NEEDS_PERTURBATION: bool = false;
//!     fn new(params: &str) -> Result<Self, String> {
//!         let p = Params::parse(params, &["learning_rate"])?;
//!         Ok(Self { rate: p.require("learning_rate")? })
//!     }
//!     fn update<T: Scalar>(&mut self, context: &mut Context<'_, T>) -> Result<(), String> {
//!         for p in context.projections.iter_mut() {
//!             for j in 0..p.weights.cols() {
//!                 for i in 0..p.weights.rows() {
//!                     let dw = T::from_f64(self.rate) * p.post.get(i, 0) * p.pre.get(j, 0);
//!                     p.weights.set(i, j, p.weights.get(i, j) + dw);
//!                 }
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_rules!(Hebbian);
//! ```
//!
//! Rust trait objects have no stable layout across separately compiled libraries, so the
//! boundary is a small C-compatible interface ([`abi`]): one exported entry symbol returns a
//! descriptor with its own size, the interface version and build information; each rule has
//! `create`, `update` and `destroy` functions; matrices cross as pointers with shapes; errors
//! return through a host callback, so no memory is ever freed on the wrong side. Panics are
//! caught on the plugin side and become errors. `docs/plugins.md` is the tutorial.

use std::ffi::c_void;
use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The version of the binary interface. Bumped on any change to [`abi`].
///
/// | version | adds |
/// |---|---|
/// | 1 | rules on static tasks: one column per sample |
/// | 2 | a time axis: [`abi::RawContext::columns_per_sample`] (a rendition's steps on tasks in time), appended to the context so that a version-1 plugin still reads its prefix |
pub const INTERFACE_VERSION: u32 = 2;

/// The oldest interface version npsim still loads (on static tasks only; tasks in time need
/// version 2).
pub const OLDEST_INTERFACE_VERSION: u32 = 1;

/// The symbol npsim looks up: `extern "C" fn() -> *const PluginDescriptor`.
pub const ENTRY_SYMBOL: &str = "npsim_plugin_entry";

/// The C-compatible types that cross the library boundary.
///
/// All pointers are borrowed for the duration of one call. Matrices are column-major
/// (`(i, j)` at `data[j * rows + i]`), with one column per sample of the batch for activities,
/// and `post × pre` for weights. A null `data` pointer means "absent".
pub mod abi {
    use std::ffi::c_void;

    /// A borrowed UTF-8 string.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct StrRef {
        /// First byte.
        pub ptr: *const u8,
        /// Length in bytes.
        pub len: usize,
    }

    impl StrRef {
        /// Borrows a string.
        pub const fn new(s: &str) -> Self {
            Self {
                ptr: s.as_ptr(),
                len: s.len(),
            }
        }

        /// The string, if valid UTF-8.
        ///
        /// # Safety
        /// `ptr` must point to `len` readable bytes that outlive `'a`.
        pub unsafe fn as_str<'a>(&self) -> Option<&'a str> {
            if self.ptr.is_null() {
                return Some("");
            }
            // SAFETY: the caller guarantees `ptr..ptr+len` is readable for `'a`.
            let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
            std::str::from_utf8(bytes).ok()
        }
    }

    /// How the plugin was built.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct BuildInfo {
        /// Version of the `npsim-plugin` crate it was built against.
        pub interface_crate_version: StrRef,
        /// `rustc --version` of its compiler.
        pub rustc_version: StrRef,
        /// Target triple.
        pub target: StrRef,
        /// `"unwind"` or `"abort"`.
        pub panic_strategy: StrRef,
    }

    /// What the entry symbol returns.
    #[repr(C)]
    #[derive(Debug)]
    pub struct PluginDescriptor {
        /// `size_of::<PluginDescriptor>()` as the plugin saw it.
        pub size: usize,
        /// [`crate::INTERFACE_VERSION`] as the plugin saw it.
        pub interface_version: u32,
        /// Build information.
        pub build: BuildInfo,
        /// The rules, `rule_count` of them.
        pub rules: *const RuleDescriptor,
        /// Number of rules.
        pub rule_count: usize,
    }

    /// Called by the plugin to report an error message; the host copies it.
    pub type ReportFn = unsafe extern "C" fn(data: *mut c_void, message: StrRef);

    /// The host's side of a call.
    #[repr(C)]
    #[derive(Debug)]
    pub struct Host {
        /// Opaque host data, passed back to `report_error`.
        pub data: *mut c_void,
        /// Error reporting.
        pub report_error: ReportFn,
    }

    /// Creates a rule instance from its parameter text; null on error (reported via `host`).
    pub type CreateFn = unsafe extern "C" fn(params: StrRef, host: *const Host) -> *mut c_void;
    /// One update; 0 on success, non-zero on error (reported via `host`).
    pub type UpdateFn =
        unsafe extern "C" fn(state: *mut c_void, context: *const RawContext, host: *const Host) -> i32;
    /// Destroys an instance made by `create`.
    pub type DestroyFn = unsafe extern "C" fn(state: *mut c_void);

    /// One rule of a plugin.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct RuleDescriptor {
        /// Name used in scenarios.
        pub name: StrRef,
        /// What it does.
        pub doc: StrRef,
        /// Its parameters.
        pub params_doc: StrRef,
        /// 1 if it reads noise and the signal.
        pub needs_perturbation: u8,
        /// 1 if it reads back-propagated errors.
        pub needs_backprop: u8,
        /// Constructor.
        pub create: CreateFn,
        /// Update.
        pub update: UpdateFn,
        /// Destructor.
        pub destroy: DestroyFn,
    }

    /// `RawContext::precision` for `f32` data.
    pub const PRECISION_F32: u32 = 32;
    /// `RawContext::precision` for `f64` data.
    pub const PRECISION_F64: u32 = 64;

    /// A read-only matrix.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct RawMatrix {
        /// First element, or null if absent.
        pub data: *const c_void,
        /// Rows.
        pub rows: usize,
        /// Columns.
        pub cols: usize,
    }

    /// A writable matrix.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct RawMatrixMut {
        /// First element, or null if absent.
        pub data: *mut c_void,
        /// Rows.
        pub rows: usize,
        /// Columns.
        pub cols: usize,
    }

    /// One plastic projection.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct RawProjection {
        /// Name.
        pub name: StrRef,
        /// Clean presynaptic activity, `pre × batch`.
        pub pre: RawMatrix,
        /// Clean postsynaptic activity, `post × batch`.
        pub post: RawMatrix,
        /// Noise each postsynaptic unit received (`σξ`), `post × batch`, or absent.
        pub post_noise: RawMatrix,
        /// Back-propagated `∂ℓ/∂u`, `post × batch`, or absent.
        pub post_error: RawMatrix,
        /// σ of the postsynaptic noise.
        pub noise_std: f64,
        /// Weights, `post × pre`, to change in place.
        pub weights: RawMatrixMut,
        /// Bias, `post × 1`, or absent.
        pub bias: RawMatrixMut,
    }

    /// Everything an update sees.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct RawContext {
        /// [`PRECISION_F32`] or [`PRECISION_F64`].
        pub precision: u32,
        /// Samples in the batch.
        pub batch: usize,
        /// `ℓ(noisy) − ℓ(clean)` per sample, `1 × batch` (absent without perturbation).
        pub signal: RawMatrix,
        /// Clean loss per sample, `1 × batch`.
        pub loss: RawMatrix,
        /// The plastic projections.
        pub projections: *const RawProjection,
        /// How many.
        pub projection_count: usize,
        /// Columns per sample in every activity, noise and error matrix (since version 2):
        /// 1 on static tasks; on tasks in time, the steps of a rendition, whose columns
        /// `b·steps .. (b + 1)·steps` are rendition `b`'s steps in order.
        pub columns_per_sample: usize,
    }
}

use abi::*;

/// The floating-point types a rule runs in (`f32`, `f64`).
pub trait Scalar:
    Copy
    + Default
    + Debug
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + 'static
{
    /// The `RawContext::precision` tag.
    const PRECISION: u32;
    /// Rounds an `f64`.
    fn from_f64(x: f64) -> Self;
    /// Widens to `f64`.
    fn to_f64(self) -> f64;
}

impl Scalar for f32 {
    const PRECISION: u32 = PRECISION_F32;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Scalar for f64 {
    const PRECISION: u32 = PRECISION_F64;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// A read-only column-major matrix.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
}

impl<'a, T: Copy> Matrix<'a, T> {
    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Entry `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> T {
        self.data[j * self.rows + i]
    }
    /// Column `j` (sample `j` for activities).
    pub fn column(&self, j: usize) -> &'a [T] {
        &self.data[j * self.rows..(j + 1) * self.rows]
    }
    /// All entries, column-major.
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }
}

/// A writable column-major matrix.
#[derive(Debug)]
pub struct MatrixMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
}

impl<T: Copy> MatrixMut<'_, T> {
    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Entry `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> T {
        self.data[j * self.rows + i]
    }
    /// Sets entry `(i, j)`.
    pub fn set(&mut self, i: usize, j: usize, value: T) {
        self.data[j * self.rows + i] = value;
    }
    /// Column `j`, writable.
    pub fn column_mut(&mut self, j: usize) -> &mut [T] {
        &mut self.data[j * self.rows..(j + 1) * self.rows]
    }
    /// All entries, column-major, writable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.data
    }
}

/// What a plugin rule may read and change about one plastic projection, for one step.
#[derive(Debug)]
pub struct Projection<'a, T> {
    /// Name.
    pub name: &'a str,
    /// Clean presynaptic activity, `pre × batch`.
    pub pre: Matrix<'a, T>,
    /// Clean postsynaptic activity, `post × batch`.
    pub post: Matrix<'a, T>,
    /// Noise each postsynaptic unit received (`σξ`), if perturbed.
    pub post_noise: Option<Matrix<'a, T>>,
    /// Back-propagated `∂ℓ/∂u`, if the rule asked for it.
    pub post_error: Option<Matrix<'a, T>>,
    /// σ of the postsynaptic noise.
    pub noise_std: f64,
    /// Weights, `post × pre`.
    pub weights: MatrixMut<'a, T>,
    /// Bias, if the projection has one.
    pub bias: Option<&'a mut [T]>,
}

/// Everything a plugin rule sees in one update.
///
/// On tasks in time a sample is a rendition: the rule is called once at the end of each
/// update, after its renditions, and each rendition `b` contributes `columns_per_sample`
/// consecutive columns (its steps) to every activity, noise and error matrix, while
/// `signal` and `loss` have one entry per rendition. An eligibility trace is then the sum over
/// a rendition's columns, `E_b = Σ_t n_b(t) r_b(t)ᵀ` (see the example plugin's
/// `node_perturbation`). On a convolution the columns of a sample are its positions, and the
/// same sum is the kernel's update.
#[derive(Debug)]
pub struct Context<'a, T> {
    /// `ℓ(noisy) − ℓ(clean)` per sample (empty without perturbation).
    pub signal: &'a [T],
    /// Clean loss per sample.
    pub loss: &'a [T],
    /// Samples (renditions) in the batch.
    pub batch: usize,
    /// Columns per sample: 1 on static tasks, a rendition's steps on tasks in time.
    pub columns_per_sample: usize,
    /// The plastic projections.
    pub projections: Vec<Projection<'a, T>>,
}

/// A learning rule in a plugin.
///
/// An implementor **must** change weights only through the [`Context`] it is given, treat the
/// batch as a sum of per-sample updates, and report bad parameters from [`Rule::new`] as an
/// `Err` with a message that names the parameter. It **need not** be thread-safe beyond
/// `Send`: npsim calls one instance from one thread at a time (different instances, for
/// different runs of a sweep, may run concurrently), and it **need not** catch its own
/// panics: the export wrapper turns a panic into an error and the run is marked failed.
pub trait Rule: Send + Sized + 'static {
    /// Name used in scenarios (`rule: Plugin(name: "...")`).
    const NAME: &'static str;
    /// What the rule does (shown by `npsim rules --plugin`).
    const DOC: &'static str;
    /// Its parameters, with units and defaults.
    const PARAMS: &'static str;
    /// Whether it reads noise and the signal (npsim then runs the perturbed pass).
    const NEEDS_PERTURBATION: bool = true;
    /// Whether it reads back-propagated errors.
    const NEEDS_BACKPROP: bool = false;
    /// Builds an instance from the scenario's `params` text.
    fn new(params: &str) -> Result<Self, String>;
    /// One update.
    fn update<T: Scalar>(&mut self, context: &mut Context<'_, T>) -> Result<(), String>;
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-text payload".into())
}

/// # Safety
/// `host` is null or valid for the call.
unsafe fn report(host: *const Host, message: &str) {
    if host.is_null() {
        return;
    }
    // SAFETY: the host passes a valid `Host` for the duration of the call.
    let host = unsafe { &*host };
    // SAFETY: the host's callback copies the message before returning.
    unsafe { (host.report_error)(host.data, StrRef::new(message)) };
}

/// `create` for rule `R`.
///
/// # Safety
/// Called by npsim with a valid parameter string and host.
pub unsafe extern "C" fn create_rule<R: Rule>(params: StrRef, host: *const Host) -> *mut c_void {
    // SAFETY: npsim passes a string it owns for the duration of the call.
    let text = unsafe { params.as_str() };
    let result = catch_unwind(AssertUnwindSafe(|| match text {
        Some(text) => R::new(text),
        None => Err("params are not valid UTF-8".into()),
    }));
    let message = match result {
        Ok(Ok(rule)) => return Box::into_raw(Box::new(rule)).cast(),
        Ok(Err(message)) => message,
        Err(payload) => format!("panicked while creating: {}", panic_message(payload.as_ref())),
    };
    // SAFETY: `host` is valid for this call.
    unsafe { report(host, &message) };
    std::ptr::null_mut()
}

/// Builds the safe view of a raw matrix.
///
/// # Safety
/// `raw.data` is null or points to `rows * cols` initialised `T`s valid for `'a`.
unsafe fn matrix<'a, T>(raw: RawMatrix) -> Option<Matrix<'a, T>> {
    if raw.data.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller (npsim's loader builds these from live matrices).
    let data = unsafe { std::slice::from_raw_parts(raw.data.cast::<T>(), raw.rows * raw.cols) };
    Some(Matrix {
        data,
        rows: raw.rows,
        cols: raw.cols,
    })
}

/// # Safety
/// As [`matrix`], and no other reference to the data exists during `'a`.
unsafe fn matrix_mut<'a, T>(raw: RawMatrixMut) -> Option<MatrixMut<'a, T>> {
    if raw.data.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller; npsim hands each weight matrix out once per call.
    let data = unsafe { std::slice::from_raw_parts_mut(raw.data.cast::<T>(), raw.rows * raw.cols) };
    Some(MatrixMut {
        data,
        rows: raw.rows,
        cols: raw.cols,
    })
}

/// # Safety
/// `raw` describes live data of precision `T` for the duration of `'a`.
unsafe fn context<'a, T: Scalar>(raw: &'a RawContext) -> Result<Context<'a, T>, String> {
    let empty: &[T] = &[];
    // SAFETY (all blocks below): npsim's loader fills `RawContext` from matrices it keeps alive
    // and unaliased for the whole call, with the element type named by `precision`.
    let signal = unsafe { matrix::<T>(raw.signal) }.map_or(empty, |m| m.data);
    let loss = unsafe { matrix::<T>(raw.loss) }.map_or(empty, |m| m.data);
    let raws = if raw.projections.is_null() {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(raw.projections, raw.projection_count) }
    };
    let mut projections = Vec::with_capacity(raws.len());
    for p in raws {
        let name = unsafe { p.name.as_str() }.ok_or("a projection name is not UTF-8")?;
        projections.push(Projection {
            name,
            pre: unsafe { matrix(p.pre) }.ok_or("presynaptic activity missing")?,
            post: unsafe { matrix(p.post) }.ok_or("postsynaptic activity missing")?,
            post_noise: unsafe { matrix(p.post_noise) },
            post_error: unsafe { matrix(p.post_error) },
            noise_std: p.noise_std,
            weights: unsafe { matrix_mut(p.weights) }.ok_or("weights missing")?,
            bias: unsafe { matrix_mut::<T>(p.bias) }.map(|m| m.data),
        });
    }
    Ok(Context {
        signal,
        loss,
        batch: raw.batch,
        columns_per_sample: raw.columns_per_sample.max(1),
        projections,
    })
}

/// `update` for rule `R`.
///
/// # Safety
/// Called by npsim with a state made by [`create_rule::<R>`], a valid context and host.
pub unsafe extern "C" fn update_rule<R: Rule>(
    state: *mut c_void,
    raw: *const RawContext,
    host: *const Host,
) -> i32 {
    if state.is_null() || raw.is_null() {
        // SAFETY: `host` is valid for this call.
        unsafe { report(host, "update called without a rule instance or context") };
        return 1;
    }
    // SAFETY: `state` came from `create_rule::<R>` and npsim calls it from one thread at a time.
    let rule = unsafe { &mut *state.cast::<R>() };
    // SAFETY: npsim passes a valid context for the duration of the call.
    let raw = unsafe { &*raw };
    let result = catch_unwind(AssertUnwindSafe(|| match raw.precision {
        // SAFETY: the precision tag names the element type of every matrix.
        PRECISION_F32 => unsafe { context::<f32>(raw) }.and_then(|mut c| rule.update(&mut c)),
        PRECISION_F64 => unsafe { context::<f64>(raw) }.and_then(|mut c| rule.update(&mut c)),
        other => Err(format!("unknown precision tag {other}")),
    }));
    let message = match result {
        Ok(Ok(())) => return 0,
        Ok(Err(message)) => message,
        Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
    };
    // SAFETY: `host` is valid for this call.
    unsafe { report(host, &message) };
    1
}

/// `destroy` for rule `R`.
///
/// # Safety
/// `state` was made by [`create_rule::<R>`] and is not used afterwards.
pub unsafe extern "C" fn destroy_rule<R: Rule>(state: *mut c_void) {
    if !state.is_null() {
        // SAFETY: `state` is a `Box<R>` leaked by `create_rule::<R>`, destroyed once.
        let rule = unsafe { Box::from_raw(state.cast::<R>()) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(rule)));
    }
}

/// The descriptor of rule `R`.
pub fn describe<R: Rule>() -> RuleDescriptor {
    RuleDescriptor {
        name: StrRef::new(R::NAME),
        doc: StrRef::new(R::DOC),
        params_doc: StrRef::new(R::PARAMS),
        needs_perturbation: u8::from(R::NEEDS_PERTURBATION),
        needs_backprop: u8::from(R::NEEDS_BACKPROP),
        create: create_rule::<R>,
        update: update_rule::<R>,
        destroy: destroy_rule::<R>,
    }
}

/// Build information of this compilation, with the given panic strategy.
pub fn build_info(panic_strategy: &'static str) -> BuildInfo {
    BuildInfo {
        interface_crate_version: StrRef::new(env!("CARGO_PKG_VERSION")),
        rustc_version: StrRef::new(env!("NPSIM_PLUGIN_RUSTC")),
        target: StrRef::new(env!("NPSIM_PLUGIN_TARGET")),
        panic_strategy: StrRef::new(panic_strategy),
    }
}

/// A plugin's exported descriptor and the rule table it points into (made by
/// [`export_rules!`]).
#[derive(Debug)]
pub struct Exported {
    descriptor: PluginDescriptor,
    _rules: Box<[RuleDescriptor]>,
}

// SAFETY: the descriptor's pointers point into `_rules` and to `'static` strings, all
// immutable after construction; the function pointers are plain code.
unsafe impl Send for Exported {}
// SAFETY: as above: nothing in `Exported` is mutated after construction.
unsafe impl Sync for Exported {}

impl Exported {
    /// The table for these rules, built with `panic_strategy`.
    pub fn new(rules: Vec<RuleDescriptor>, panic_strategy: &'static str) -> Self {
        Self::with_build(
            rules,
            build_info(panic_strategy),
            INTERFACE_VERSION,
            std::mem::size_of::<PluginDescriptor>(),
        )
    }

    /// The table with explicit handshake fields (for testing npsim's handshake).
    #[doc(hidden)]
    pub fn with_build(
        rules: Vec<RuleDescriptor>,
        build: BuildInfo,
        interface_version: u32,
        size: usize,
    ) -> Self {
        let rules = rules.into_boxed_slice();
        let descriptor = PluginDescriptor {
            size,
            interface_version,
            build,
            rules: rules.as_ptr(),
            rule_count: rules.len(),
        };
        Self {
            descriptor,
            _rules: rules,
        }
    }

    /// The descriptor the entry symbol returns.
    pub fn descriptor(&self) -> *const PluginDescriptor {
        &self.descriptor
    }
}

/// Exports rules from a plugin crate (`crate-type = ["cdylib"]`): `export_rules!(A, B);`.
#[macro_export]
macro_rules! export_rules {
    ($($rule:ty),+ $(,)?) => {
        /// The plugin's entry point, looked up by npsim.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn npsim_plugin_entry() -> *const $crate::abi::PluginDescriptor {
            static EXPORTED: ::std::sync::OnceLock<$crate::Exported> = ::std::sync::OnceLock::new();
            EXPORTED
                .get_or_init(|| {
                    $crate::Exported::new(
                        vec![$($crate::describe::<$rule>()),+],
                        if cfg!(panic = "unwind") { "unwind" } else { "abort" },
                    )
                })
                .descriptor()
        }
    };
}

/// Parameters written as `name: value, name: value`: numbers (`1e-3`), flags (`true`,
/// `false`) and text (a bare word, or `"quoted text"` that may hold commas and colons).
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: Vec<(String, String)>,
}

impl Params {
    /// Parses `text`; names not in `allowed` are errors. Values are checked when read, by
    /// the accessor of their type.
    pub fn parse(text: &str, allowed: &[&str]) -> Result<Self, String> {
        let mut values = Vec::new();
        for item in split_outside_quotes(text, ',')? {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (name, value) = item
                .split_once(':')
                .ok_or_else(|| format!("parameter `{item}` is not `name: value`"))?;
            let (name, value) = (name.trim(), value.trim());
            if !allowed.contains(&name) {
                return Err(format!(
                    "unknown parameter `{name}`; parameters: {}",
                    allowed.join(", ")
                ));
            }
            let value = match value.strip_prefix('"') {
                Some(quoted) => quoted
                    .strip_suffix('"')
                    .ok_or_else(|| format!("parameter `{name}`: the text `{value}` has no closing quote"))?
                    .to_string(),
                None => value.to_string(),
            };
            values.push((name.to_string(), value));
        }
        Ok(Self { values })
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The number `name`, if given; an error names it if it is not a finite number.
    pub fn get(&self, name: &str) -> Result<Option<f64>, String> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        let number: f64 = value
            .parse()
            .map_err(|_| format!("parameter `{name}`: `{value}` is not a number"))?;
        if !number.is_finite() {
            return Err(format!("parameter `{name}` must be finite, got {value}"));
        }
        Ok(Some(number))
    }

    /// The number `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<f64, String> {
        self.get(name)?
            .ok_or_else(|| format!("parameter `{name}` is required"))
    }

    /// The number `name`, or `default` if it is not given.
    pub fn get_or(&self, name: &str, default: f64) -> Result<f64, String> {
        Ok(self.get(name)?.unwrap_or(default))
    }

    /// The flag `name` (`true` or `false`), if given.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, String> {
        match self.raw(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(format!("parameter `{name}`: `{other}` is not `true` or `false`")),
        }
    }

    /// The text `name` (quotes removed), if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.raw(name)
    }
}

/// `text` cut at each `separator` that is not inside double quotes.
fn split_outside_quotes(text: &str, separator: char) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    if quoted {
        return Err(format!("the parameters `{text}` have an unclosed quote"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_and_name_problems() {
        let p = Params::parse("learning_rate: 1e-3, decay: 0.9", &["learning_rate", "decay"]).unwrap();
        assert_eq!(p.require("learning_rate").unwrap(), 1e-3);
        assert_eq!(p.get_or("decay", 0.5), Ok(0.9));
        assert_eq!(p.get_or("other", 0.5), Ok(0.5));
        assert_eq!(
            Params::parse("rate: 1", &["learning_rate"]).unwrap_err(),
            "unknown parameter `rate`; parameters: learning_rate"
        );
        assert_eq!(
            Params::parse("learning_rate: fast", &["learning_rate"])
                .unwrap()
                .require("learning_rate")
                .unwrap_err(),
            "parameter `learning_rate`: `fast` is not a number"
        );
        let p = Params::parse(
            r#"mode: fast, label: "a, b: c", clip: true"#,
            &["mode", "label", "clip"],
        )
        .unwrap();
        assert_eq!(p.text("mode"), Some("fast"));
        assert_eq!(p.text("label"), Some("a, b: c"));
        assert_eq!(p.flag("clip"), Ok(Some(true)));
        assert!(p.flag("mode").unwrap_err().contains("is not `true` or `false`"));
        assert!(Params::parse(r#"label: "open"#, &["label"]).is_err());
        assert_eq!(
            Params::parse("", &["x"]).unwrap().require("x").unwrap_err(),
            "parameter `x` is required"
        );
    }
}
