//! `weft describe`: reads a config directory the way `weft control` does (rejected files
//! are reported and left out) and prints the control plane's explanation of one service.

use std::io::Write;

use weft_control::describe::describe;
use weft_control::registry::Registry;
use weft_control::store::ConfigStore;
use weft_control::translate::{MeshSettings, MeshView};

use crate::cli::DescribeArgs;

pub fn run(args: &DescribeArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut store = ConfigStore::new(&args.config_dir);
    let scan = match store.scan() {
        Ok(scan) => scan,
        Err(e) => {
            let _ = writeln!(err, "weft describe: {e}");
            return 2;
        }
    };
    for (file, findings) in &scan.rejected {
        let _ = writeln!(
            err,
            "{file}: rejected ({} error(s)); left out:",
            findings.len()
        );
        for f in findings {
            let _ = writeln!(err, "  {f}");
        }
    }
    let mut mesh = MeshSettings {
        domain: args.domain.clone(),
        ..MeshSettings::default()
    };
    if let Some(m) = store.mesh_config() {
        mesh.apply(m);
    }
    let resources = store.resources();
    let registry = Registry::build_with_pods(&resources, &store.pods(), &[], &mesh.domain);
    let view = MeshView::new(&resources, registry, mesh);
    match describe(&view, &resources, &args.service, &args.namespace) {
        Ok(text) => {
            let _ = out.write_all(text.as_bytes());
            0
        }
        Err(e) => {
            let _ = writeln!(err, "weft describe: {e}");
            1
        }
    }
}
