//! The `renkei._core` extension module: one submodule per engine domain, errors mapped in
//! `errors`. Batch entry points borrow numpy buffers, release the GIL, compute, and return.

mod arrays;
mod codes;
mod errors;
mod fs;
mod inquiry;
mod ledger;
mod numbers;
mod permissions;
mod permits;

use pyo3::prelude::*;

fn add_submodule(parent: &Bound<'_, PyModule>, name: &str, init: fn(&Bound<'_, PyModule>) -> PyResult<()>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), name)?;
    init(&m)?;
    parent.add_submodule(&m)?;
    // Make `import renkei._core.<name>` work too, not only attribute access.
    parent
        .py()
        .import("sys")?
        .getattr("modules")?
        .set_item(format!("renkei._core.{name}"), &m)?;
    Ok(())
}

#[pymodule]
#[pyo3(name = "_core")]
fn renkei_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    add_submodule(m, "numbers", numbers::init)?;
    add_submodule(m, "codes", codes::init)?;
    add_submodule(m, "ledger", ledger::init)?;
    add_submodule(m, "permissions", permissions::init)?;
    add_submodule(m, "permits", permits::init)?;
    add_submodule(m, "inquiry", inquiry::init)?;
    add_submodule(m, "fs", fs::init)?;
    Ok(())
}
