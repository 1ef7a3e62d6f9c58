//! Loading learning rules from shared libraries. All of npsim's `unsafe` lives here.
//!
//! A plugin library exports one symbol, [`npsim_plugin::ENTRY_SYMBOL`], returning a
//! `#[repr(C)]` descriptor (see the `npsim-plugin` crate). Loading checks it before using
//! anything else: the descriptor's own size and the interface version first, then the target
//! and the panic strategy. A mismatch that could break the interface is refused with a message
//! saying how to rebuild; one that cannot (another compiler version, another patch of the
//! interface crate) is a warning. Libraries are never unloaded while the process runs, so no
//! function pointer or string from a plugin can dangle.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use libloading::Library;
use nalgebra::DMatrix;
use npsim_core::{LearningRule, Real, Requirements, RuleContext, RuleError};
use npsim_plugin::abi::{
    Host, PRECISION_F32, PRECISION_F64, PluginDescriptor, RawContext, RawMatrix, RawMatrixMut, RawProjection,
    RuleDescriptor, StrRef,
};
use npsim_plugin::{ENTRY_SYMBOL, INTERFACE_VERSION, OLDEST_INTERFACE_VERSION, build_info};
use thiserror::Error;

/// A plugin that cannot be used.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PluginError {
    /// The file is missing or not a loadable library.
    #[error("cannot load plugin `{}`: {message}", path.display())]
    Open {
        /// The library.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The handshake failed.
    #[error("plugin `{}` is incompatible: {problem}", path.display())]
    Handshake {
        /// The library.
        path: PathBuf,
        /// What differs and how to rebuild.
        problem: String,
    },
    /// No rule of that name.
    #[error("plugin `{}` has no rule `{name}`; its rules: {known}", path.display())]
    UnknownRule {
        /// The library.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The names it has.
        known: String,
    },
    /// The rule rejected its parameters (or panicked while reading them).
    #[error("plugin rule `{name}` rejected its parameters: {message}")]
    Create {
        /// The rule.
        name: String,
        /// Its message.
        message: String,
    },
}

/// One rule offered by a plugin.
#[derive(Debug, Clone)]
pub struct PluginRuleInfo {
    /// Name used in scenarios.
    pub name: String,
    /// What it does.
    pub doc: String,
    /// Its parameters.
    pub params: String,
    /// What it reads.
    pub requirements: Requirements,
    descriptor: RuleDescriptor,
}

/// A loaded, checked plugin library.
#[derive(Debug)]
pub struct PluginLibrary {
    /// Canonical path.
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Compiler that built it.
    pub rustc_version: String,
    /// Version of `npsim-plugin` it was built against.
    pub interface_crate_version: String,
    /// The interface version it speaks (version 1 has no time axis: static tasks only).
    pub interface_version: u32,
    /// Harmless mismatches found in the handshake.
    pub warnings: Vec<String>,
    /// Its rules.
    pub rules: Vec<PluginRuleInfo>,
}

// SAFETY: the descriptors held in `rules` point to code and immutable `'static` data of a
// library that is never unloaded; nothing in them is mutated.
unsafe impl Send for PluginLibrary {}
// SAFETY: as above.
unsafe impl Sync for PluginLibrary {}

type Registry = Mutex<HashMap<(PathBuf, String), Arc<PluginLibrary>>>;

fn registry() -> &'static Registry {
    static LOADED: OnceLock<Registry> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

/// Loads (once per process) and checks the plugin at `path`.
pub fn load(path: &Path) -> Result<Arc<PluginLibrary>, PluginError> {
    load_entry(path, ENTRY_SYMBOL)
}

/// Refuses a file that is not a shared library of this platform before the dynamic loader
/// maps it: a text file or a truncated build gives a reason instead of "dlopen failed" (or, for
/// a library cut short, a crash when its missing pages are touched).
pub fn check_library_format(bytes: &[u8]) -> Result<(), String> {
    let not_a_library = |what: &str| {
        Err(format!(
            "it is not a shared library ({what}); name the `.so`, `.dylib` or `.dll` file that building the plugin crate produced"
        ))
    };
    if cfg!(target_os = "linux") {
        if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
            return not_a_library("no ELF header");
        }
        // The section header table lies at the end of an ELF file: a file shorter than where
        // it ends was truncated.
        let is_64 = bytes[4] == 2;
        let little = bytes[5] == 1;
        let word = |at: usize, len: usize| {
            let mut value = 0u64;
            for k in 0..len {
                let byte = u64::from(bytes[at + if little { k } else { len - 1 - k }]);
                value |= byte << (8 * k);
            }
            value
        };
        let (table, entry_size, entries) = if is_64 {
            (word(0x28, 8), word(0x3A, 2), word(0x3C, 2))
        } else {
            (word(0x20, 4), word(0x2E, 2), word(0x30, 2))
        };
        let end = table.saturating_add(entry_size.saturating_mul(entries));
        if end > bytes.len() as u64 {
            return Err(format!(
                "it is truncated: its ELF header describes {end} bytes, the file has {}; rebuild the plugin",
                bytes.len()
            ));
        }
    }
    Ok(())
}

/// Like [`load`], with another entry symbol (for libraries exporting several plugins, and
/// for testing the handshake).
pub fn load_entry(path: &Path, symbol: &str) -> Result<Arc<PluginLibrary>, PluginError> {
    let open_error = |message: String| PluginError::Open {
        path: path.to_path_buf(),
        message,
    };
    let canonical = path.canonicalize().map_err(|e| {
        open_error(format!(
            "{e}; check the path (in a scenario, a relative path starts at the scenario file's folder) and that the plugin crate was built (`cargo build --release` in it puts the library in its target/release)"
        ))
    })?;
    let key = (canonical.clone(), symbol.to_string());
    let mut loaded = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(library) = loaded.get(&key) {
        return Ok(Arc::clone(library));
    }
    let bytes = std::fs::read(&canonical).map_err(|e| open_error(e.to_string()))?;
    let sha256 = crate::fetch::sha256_hex(&bytes[..]).map_err(|e| open_error(e.to_string()))?;
    check_library_format(&bytes).map_err(open_error)?;
    // SAFETY: loading a library runs its initialisers. The user named this file as an npsim
    // plugin; its entry point and descriptor are checked below before anything else is used.
    let library = unsafe { Library::new(&canonical) }.map_err(|e| open_error(e.to_string()))?;
    // Never unloaded: function pointers and strings from the plugin stay valid.
    let library: &'static Library = Box::leak(Box::new(library));
    let handshake = |problem: String| PluginError::Handshake {
        path: canonical.clone(),
        problem,
    };
    // SAFETY: the entry symbol has the documented signature `extern "C" fn() -> *const
    // PluginDescriptor`; a library exporting the name with another type is not an npsim plugin.
    let entry = unsafe { library.get::<extern "C" fn() -> *const PluginDescriptor>(symbol.as_bytes()) }
        .map_err(|_| {
            open_error(format!(
                "no `{symbol}` symbol: it is not an npsim plugin (use npsim_plugin::export_rules!)"
            ))
        })?;
    let pointer = entry();
    if pointer.is_null() {
        return Err(handshake("its entry point returned no descriptor".into()));
    }
    // SAFETY: every version of the descriptor starts with its size (a `usize`) followed by the
    // interface version (a `u32`); only these are read before they are checked.
    let (size, version) = unsafe { (pointer.cast::<usize>().read(), (*pointer).interface_version) };
    let crate_version = env!("CARGO_PKG_VERSION");
    if !(OLDEST_INTERFACE_VERSION..=INTERFACE_VERSION).contains(&version) {
        return Err(handshake(format!(
            "it speaks plugin interface version {version}, this npsim speaks versions {OLDEST_INTERFACE_VERSION} to {INTERFACE_VERSION}; rebuild the plugin against npsim-plugin {crate_version} (the version in this npsim's workspace)"
        )));
    }
    if size != std::mem::size_of::<PluginDescriptor>() {
        return Err(handshake(format!(
            "its descriptor is {size} bytes, this npsim expects {}; rebuild the plugin against npsim-plugin {crate_version}",
            std::mem::size_of::<PluginDescriptor>()
        )));
    }
    // SAFETY: size and version match, so the layout is this build's `PluginDescriptor`.
    let descriptor = unsafe { &*pointer };
    // SAFETY: the descriptor's strings point to `'static` data in the never-unloaded library.
    let text = |s: StrRef, what: &str| {
        unsafe { s.as_str() }
            .map(str::to_string)
            .ok_or_else(|| handshake(format!("its {what} is not UTF-8")))
    };
    let ours = build_info("unwind");
    // SAFETY: our own build information points to `'static` strings.
    let our = |s: StrRef| unsafe { s.as_str() }.unwrap_or_default().to_string();
    let target = text(descriptor.build.target, "target")?;
    if target != our(ours.target) {
        return Err(handshake(format!(
            "it was built for target `{target}`, this npsim runs on `{}`; rebuild it for this machine with cargo build --release",
            our(ours.target)
        )));
    }
    let panic_strategy = text(descriptor.build.panic_strategy, "panic strategy")?;
    if panic_strategy != "unwind" {
        return Err(handshake(format!(
            "it was built with panic = \"{panic_strategy}\", so a panic in it would abort npsim; rebuild it with panic = \"unwind\" (the default) in its Cargo profile"
        )));
    }
    let rustc_version = text(descriptor.build.rustc_version, "compiler version")?;
    let interface_crate_version = text(
        descriptor.build.interface_crate_version,
        "interface crate version",
    )?;
    let mut warnings = Vec::new();
    if rustc_version != our(ours.rustc_version) {
        warnings.push(format!(
            "plugin `{}` was built by {rustc_version}, npsim by {}; the C interface does not depend on it",
            canonical.display(),
            our(ours.rustc_version)
        ));
    }
    if interface_crate_version != crate_version {
        warnings.push(format!(
            "plugin `{}` was built against npsim-plugin {interface_crate_version}, npsim uses {crate_version}; both speak interface version {INTERFACE_VERSION}",
            canonical.display()
        ));
    }
    let table = if descriptor.rules.is_null() || descriptor.rule_count == 0 {
        &[][..]
    } else {
        // SAFETY: the descriptor points to `rule_count` rule descriptors in the library.
        unsafe { std::slice::from_raw_parts(descriptor.rules, descriptor.rule_count) }
    };
    let rules = table
        .iter()
        .map(|r| {
            Ok(PluginRuleInfo {
                name: text(r.name, "rule name")?,
                doc: text(r.doc, "rule documentation")?,
                params: text(r.params_doc, "parameter documentation")?,
                requirements: Requirements {
                    perturbation: r.needs_perturbation != 0,
                    backprop: r.needs_backprop != 0,
                    ..Default::default()
                },
                descriptor: *r,
            })
        })
        .collect::<Result<Vec<_>, PluginError>>()?;
    let library = Arc::new(PluginLibrary {
        path: canonical,
        sha256,
        rustc_version,
        interface_crate_version,
        interface_version: version,
        warnings,
        rules,
    });
    loaded.insert(key, Arc::clone(&library));
    Ok(library)
}

/// Copies an error message reported by the plugin into the host's `String`.
///
/// # Safety
/// `data` is the `*mut String` the host put in [`Host::data`] for this call.
unsafe extern "C" fn report_error(data: *mut c_void, message: StrRef) {
    // SAFETY: the host passes a live, exclusively borrowed `String` for the call's duration.
    let buffer = unsafe { &mut *data.cast::<String>() };
    // SAFETY: the plugin passes a string valid for this call; it is copied, not kept.
    let text = unsafe { message.as_str() }.unwrap_or("(an error message that is not UTF-8)");
    buffer.push_str(text);
}

fn host(buffer: &mut String) -> Host {
    Host {
        data: std::ptr::from_mut(buffer).cast(),
        report_error,
    }
}

/// A plugin rule instance's opaque state.
struct Instance(*mut c_void);

// SAFETY: the plugin contract (`npsim_plugin::Rule: Send`) allows an instance to move between
// threads; npsim calls it from one thread at a time (`&mut self`).
unsafe impl Send for Instance {}

/// A rule from a plugin, used like a built-in one.
pub struct PluginRule<T: Real> {
    library: Arc<PluginLibrary>,
    rule: usize,
    /// `plugin:<name>`, as recorded.
    name: String,
    instance: Instance,
    _precision: PhantomData<T>,
}

impl PluginLibrary {
    /// The rule called `name`.
    pub fn rule(&self, name: &str) -> Result<&PluginRuleInfo, PluginError> {
        self.rules
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| PluginError::UnknownRule {
                path: self.path.clone(),
                name: name.into(),
                known: self
                    .rules
                    .iter()
                    .map(|r| format!("`{}`", r.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Creates an instance of rule `name` with parameter text `params`.
    pub fn instantiate<T: Real>(
        self: &Arc<Self>,
        name: &str,
        params: &str,
    ) -> Result<PluginRule<T>, PluginError> {
        let info = self.rule(name)?;
        let rule = self
            .rules
            .iter()
            .position(|r| r.name == name)
            .expect("found above");
        let mut message = String::new();
        let host = host(&mut message);
        // SAFETY: `create` comes from the checked descriptor; `params` and `host` outlive the call.
        let state = unsafe { (info.descriptor.create)(StrRef::new(params), &host) };
        if state.is_null() {
            return Err(PluginError::Create {
                name: name.into(),
                message,
            });
        }
        Ok(PluginRule {
            library: Arc::clone(self),
            rule,
            name: format!("plugin:{name}"),
            instance: Instance(state),
            _precision: PhantomData,
        })
    }
}

fn raw<T: Real>(m: Option<&DMatrix<T>>) -> RawMatrix {
    match m {
        Some(m) => RawMatrix {
            data: m.as_ptr().cast(),
            rows: m.nrows(),
            cols: m.ncols(),
        },
        None => RawMatrix {
            data: std::ptr::null(),
            rows: 0,
            cols: 0,
        },
    }
}

impl<T: Real> PluginRule<T> {
    fn info(&self) -> &PluginRuleInfo {
        &self.library.rules[self.rule]
    }
}

impl<T: Real> LearningRule<T> for PluginRule<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn requirements(&self) -> Requirements {
        self.info().requirements
    }

    fn update(&mut self, context: &mut RuleContext<'_, T>) -> Result<(), RuleError> {
        let precision = if T::PRECISION == npsim_core::Precision::F32 {
            PRECISION_F32
        } else {
            PRECISION_F64
        };
        let columns_per_sample = context.projections.first().map_or(1, |p| p.columns_per_sample);
        if self.library.interface_version < 2
            && let Some(p) = context.projections.iter().find(|p| p.columns_per_sample != 1)
        {
            // Version 1 has one column per sample: no time steps, no convolution positions.
            return Err(RuleError::Unsupported {
                rule: self.info().name.clone(),
                projection: p.name.into(),
                problem: format!(
                    "the plugin speaks interface version {}, with one column per sample: rebuild it against this npsim's npsim-plugin (version 2 adds columns per sample, for tasks in time and convolutions), or freeze the projection (`plastic: false`)",
                    self.library.interface_version
                ),
            });
        }
        // Every plastic projection of a step has the same columns per sample, except
        // convolutions (one per position); version 2 passes one number, so a step mixing
        // them is refused.
        if let Some(p) = context
            .projections
            .iter()
            .find(|p| p.columns_per_sample != columns_per_sample)
        {
            return Err(RuleError::Unsupported {
                rule: self.info().name.clone(),
                projection: p.name.into(),
                problem: "plugin rules see one number of columns per sample for all projections of an update, and this one differs (a convolution beside a dense projection): freeze it (`plastic: false`) or use a built-in rule".into(),
            });
        }
        let mut projections = Vec::with_capacity(context.projections.len());
        for p in context.projections.iter_mut() {
            let (pre, post, post_noise, post_error) = (
                raw(Some(p.pre())),
                raw(Some(p.post())),
                raw(p.post_noise),
                raw(p.post_error),
            );
            let weights = p.weights_mut();
            let weights = RawMatrixMut {
                data: weights.as_mut_ptr().cast(),
                rows: weights.nrows(),
                cols: weights.ncols(),
            };
            let bias = match p.bias_mut() {
                Some(b) => RawMatrixMut {
                    data: b.as_mut_ptr().cast(),
                    rows: b.len(),
                    cols: 1,
                },
                None => RawMatrixMut {
                    data: std::ptr::null_mut(),
                    rows: 0,
                    cols: 0,
                },
            };
            projections.push(RawProjection {
                name: StrRef::new(p.name),
                pre,
                post,
                post_noise,
                post_error,
                noise_std: p.noise_std.f64(),
                weights,
                bias,
            });
        }
        let vector = |v: &[T]| RawMatrix {
            data: v.as_ptr().cast(),
            rows: 1,
            cols: v.len(),
        };
        let raw_context = RawContext {
            precision,
            batch: context.loss.len(),
            signal: if context.signal.is_empty() {
                raw::<T>(None)
            } else {
                vector(context.signal)
            },
            loss: vector(context.loss),
            projections: projections.as_ptr(),
            projection_count: projections.len(),
            columns_per_sample,
        };
        let mut message = String::new();
        let host = host(&mut message);
        // SAFETY: `update` comes from the checked descriptor and `instance` from its `create`.
        // Every matrix in `raw_context` is borrowed from `context` and stays alive and unaliased
        // for the call: weights and biases are distinct per projection, and nothing else in
        // npsim touches them until it returns.
        let status = unsafe { (self.info().descriptor.update)(self.instance.0, &raw_context, &host) };
        if status == 0 {
            Ok(())
        } else {
            Err(RuleError::Failed {
                rule: self.name.clone(),
                message,
            })
        }
    }
}

impl<T: Real> Drop for PluginRule<T> {
    fn drop(&mut self) {
        // SAFETY: `instance` was made by this rule's `create` and is destroyed exactly once.
        unsafe { (self.info().descriptor.destroy)(self.instance.0) };
    }
}
