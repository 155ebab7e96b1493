//! Writes the CRD manifests into the Helm chart (`crdgen DIR [REFERENCE.md]`), or prints them
//! (`crdgen`). With a second argument it also writes the Markdown resource reference.
//!
//! The chart ships them as templates (not in `crds/`) so `helm upgrade` upgrades them too.

use std::{env, fs, path::Path, process::ExitCode};

use switchboard_crds::resources::crd_yaml;

fn main() -> ExitCode {
    let documents = crd_yaml();
    match env::args().nth(1) {
        None => {
            for (_, yaml) in &documents {
                print!("---\n{yaml}");
            }
            ExitCode::SUCCESS
        }
        Some(dir) => {
            for (file, yaml) in &documents {
                let path = Path::new(&dir).join(file);
                if let Err(e) = fs::write(&path, yaml) {
                    eprintln!("crdgen: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("wrote {}", path.display());
            }
            if let Some(reference) = env::args().nth(2) {
                if let Err(e) = fs::write(&reference, switchboard_crds::reference::markdown()) {
                    eprintln!("crdgen: cannot write {reference}: {e}");
                    return ExitCode::FAILURE;
                }
                println!("wrote {reference}");
            }
            ExitCode::SUCCESS
        }
    }
}
