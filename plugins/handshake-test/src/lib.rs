//! A plugin for npsim's tests: rules that fail or panic, and extra entry points whose
//! handshake is deliberately wrong. Not an example to follow.

use std::sync::OnceLock;

use npsim_plugin::abi::{PluginDescriptor, StrRef};
use npsim_plugin::{
    Context, Exported, INTERFACE_VERSION, Params, Rule, Scalar, build_info, describe, export_rules,
};

/// Panics in `update` after `after` steps.
pub struct Panics {
    after: u64,
    steps: u64,
}

impl Rule for Panics {
    const NAME: &'static str = "panics";
    const DOC: &'static str = "panics after a number of steps";
    const PARAMS: &'static str = "after: steps before the panic (default 0)";

    fn new(params: &str) -> Result<Self, String> {
        Ok(Self {
            after: Params::parse(params, &["after"])?.get_or("after", 0.0)? as u64,
            steps: 0,
        })
    }

    fn update<T: Scalar>(&mut self, _context: &mut Context<'_, T>) -> Result<(), String> {
        self.steps += 1;
        if self.steps > self.after {
            panic!("deliberate panic at step {}", self.steps);
        }
        Ok(())
    }
}

/// Returns an error from `update`.
pub struct Fails;

impl Rule for Fails {
    const NAME: &'static str = "fails";
    const DOC: &'static str = "returns an error";
    const PARAMS: &'static str = "none";

    fn new(_params: &str) -> Result<Self, String> {
        Ok(Self)
    }

    fn update<T: Scalar>(&mut self, _context: &mut Context<'_, T>) -> Result<(), String> {
        Err("deliberate failure".into())
    }
}

/// Panics while being created.
pub struct PanicsOnCreate;

impl Rule for PanicsOnCreate {
    const NAME: &'static str = "panics_on_create";
    const DOC: &'static str = "panics in new";
    const PARAMS: &'static str = "none";

    fn new(_params: &str) -> Result<Self, String> {
        panic!("deliberate panic in new")
    }

    fn update<T: Scalar>(&mut self, _context: &mut Context<'_, T>) -> Result<(), String> {
        Ok(())
    }
}

export_rules!(Panics, Fails, PanicsOnCreate);

fn forged(slot: &'static OnceLock<Exported>, make: fn() -> Exported) -> *const PluginDescriptor {
    slot.get_or_init(make).descriptor()
}

fn standard_size() -> usize {
    std::mem::size_of::<PluginDescriptor>()
}

/// An interface version from the future.
#[unsafe(no_mangle)]
pub extern "C" fn npsim_plugin_entry_bad_version() -> *const PluginDescriptor {
    static SLOT: OnceLock<Exported> = OnceLock::new();
    forged(&SLOT, || {
        Exported::with_build(
            vec![describe::<Fails>()],
            build_info("unwind"),
            INTERFACE_VERSION + 98,
            standard_size(),
        )
    })
}

/// A plugin of interface version 1 (no time axis): loaded, refused on tasks in time.
#[unsafe(no_mangle)]
pub extern "C" fn npsim_plugin_entry_version_1() -> *const PluginDescriptor {
    static SLOT: OnceLock<Exported> = OnceLock::new();
    forged(&SLOT, || {
        Exported::with_build(
            vec![describe::<Fails>()],
            build_info("unwind"),
            1,
            standard_size(),
        )
    })
}

/// A descriptor of the wrong size.
#[unsafe(no_mangle)]
pub extern "C" fn npsim_plugin_entry_bad_size() -> *const PluginDescriptor {
    static SLOT: OnceLock<Exported> = OnceLock::new();
    forged(&SLOT, || {
        Exported::with_build(
            vec![describe::<Fails>()],
            build_info("unwind"),
            INTERFACE_VERSION,
            8,
        )
    })
}

/// Built for another target.
#[unsafe(no_mangle)]
pub extern "C" fn npsim_plugin_entry_bad_target() -> *const PluginDescriptor {
    static SLOT: OnceLock<Exported> = OnceLock::new();
    forged(&SLOT, || {
        let mut build = build_info("unwind");
        build.target = StrRef::new("riscv64gc-unknown-none-elf");
        Exported::with_build(
            vec![describe::<Fails>()],
            build,
            INTERFACE_VERSION,
            standard_size(),
        )
    })
}

/// Built with `panic = "abort"`.
#[unsafe(no_mangle)]
pub extern "C" fn npsim_plugin_entry_abort() -> *const PluginDescriptor {
    static SLOT: OnceLock<Exported> = OnceLock::new();
    forged(&SLOT, || {
        Exported::with_build(
            vec![describe::<Fails>()],
            build_info("abort"),
            INTERFACE_VERSION,
            standard_size(),
        )
    })
}

/// Built by another compiler (harmless: a warning).
#[unsafe(no_mangle)]
pub extern "C" fn npsim_plugin_entry_other_rustc() -> *const PluginDescriptor {
    static SLOT: OnceLock<Exported> = OnceLock::new();
    forged(&SLOT, || {
        let mut build = build_info("unwind");
        build.rustc_version = StrRef::new("rustc 1.85.0 (4d91de4e4 2025-02-17)");
        Exported::with_build(
            vec![describe::<Fails>()],
            build,
            INTERFACE_VERSION,
            standard_size(),
        )
    })
}
