//! What this host provides to components, and `task-host check`: a readable list of a
//! component's imports and exports that names every import the host cannot satisfy, instead
//! of wasmtime's one-at-a-time "matching implementation was not found".

use std::fmt::Write as _;

use wasmtime::Engine;
use wasmtime::component::Component;

/// The interfaces the linker in [`super::runtime`] provides, with the version implemented.
/// WASI 0.2 interfaces satisfy any 0.2.x import; pre-release versions only match exactly.
/// The linker cannot list what it holds, so a test ties the two together: a component that
/// imports every interface of the worlds the linker implements must link, and this list must
/// name exactly those interfaces.
const PROVIDED: &[(&str, &str)] = &[
    ("wasi:cli/environment", "0.2.12"),
    ("wasi:cli/exit", "0.2.12"),
    ("wasi:cli/stderr", "0.2.12"),
    ("wasi:cli/stdin", "0.2.12"),
    ("wasi:cli/stdout", "0.2.12"),
    ("wasi:cli/terminal-input", "0.2.12"),
    ("wasi:cli/terminal-output", "0.2.12"),
    ("wasi:cli/terminal-stderr", "0.2.12"),
    ("wasi:cli/terminal-stdin", "0.2.12"),
    ("wasi:cli/terminal-stdout", "0.2.12"),
    ("wasi:clocks/monotonic-clock", "0.2.12"),
    ("wasi:clocks/wall-clock", "0.2.12"),
    ("wasi:filesystem/preopens", "0.2.12"),
    ("wasi:filesystem/types", "0.2.12"),
    ("wasi:http/outgoing-handler", "0.2.12"),
    ("wasi:http/types", "0.2.12"),
    ("wasi:io/error", "0.2.12"),
    ("wasi:io/poll", "0.2.12"),
    ("wasi:io/streams", "0.2.12"),
    ("wasi:keyvalue/atomics", "0.2.0-draft"),
    ("wasi:keyvalue/batch", "0.2.0-draft"),
    ("wasi:keyvalue/store", "0.2.0-draft"),
    ("wasi:random/insecure", "0.2.12"),
    ("wasi:random/insecure-seed", "0.2.12"),
    ("wasi:random/random", "0.2.12"),
    ("wasi:sockets/instance-network", "0.2.12"),
    ("wasi:sockets/ip-name-lookup", "0.2.12"),
    ("wasi:sockets/network", "0.2.12"),
    ("wasi:sockets/tcp", "0.2.12"),
    ("wasi:sockets/tcp-create-socket", "0.2.12"),
    ("wasi:sockets/udp", "0.2.12"),
    ("wasi:sockets/udp-create-socket", "0.2.12"),
];

/// The export a component needs for this host to serve it.
pub(crate) const HANDLER_EXPORT: &str = "wasi:http/incoming-handler";

/// A component's interface, as `check` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// Import names, each with whether the host provides it.
    pub imports: Vec<(String, bool)>,
    /// Export names.
    pub exports: Vec<String>,
}

impl Report {
    /// Reads the imports and exports of `component`.
    pub(crate) fn of(engine: &Engine, component: &Component) -> Self {
        let ty = component.component_type();
        let imports = ty
            .imports(engine)
            .map(|(name, _)| (name.to_owned(), is_provided(name)))
            .collect();
        let exports = ty
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        Self { imports, exports }
    }

    /// The imports the host cannot provide.
    pub(crate) fn missing(&self) -> Vec<&str> {
        self.imports
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Whether the component exports a compatible `wasi:http/incoming-handler`.
    pub(crate) fn serves_http(&self) -> bool {
        self.exports
            .iter()
            .any(|name| matches_interface(name, HANDLER_EXPORT, "0.2.12"))
    }

    /// One sentence naming every missing import, or `None` if the host provides them all.
    pub(crate) fn missing_sentence(&self) -> Option<String> {
        let missing = self.missing();
        (!missing.is_empty()).then(|| {
            format!(
                "component imports {}, which this host does not provide",
                missing.join(", ")
            )
        })
    }

    /// The `check` listing: one line per import and export.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for (name, provided) in &self.imports {
            let status = if *provided {
                "ok"
            } else {
                "MISSING: this host does not provide it"
            };
            let _ = writeln!(out, "import {name}  {status}");
        }
        for name in &self.exports {
            let _ = writeln!(out, "export {name}");
        }
        out
    }
}

fn is_provided(import: &str) -> bool {
    PROVIDED
        .iter()
        .any(|(interface, version)| matches_interface(import, interface, version))
}

/// Whether `name` (e.g. `wasi:http/types@0.2.3`) is `interface` at a version compatible
/// with `version`: same major, and same minor while the major is 0, as semver and wasmtime's
/// linker treat them; pre-releases only match themselves.
fn matches_interface(name: &str, interface: &str, version: &str) -> bool {
    let Some((base, wanted)) = name.split_once('@') else {
        return false;
    };
    if base != interface {
        return false;
    }
    if wanted.contains('-') || version.contains('-') {
        return wanted == version;
    }
    let parts = |v: &str| v.split('.').map(str::to_owned).collect::<Vec<_>>();
    let (wanted, ours) = (parts(wanted), parts(version));
    match (wanted.first(), ours.first()) {
        (Some(major), Some(our_major)) if major == our_major && major == "0" => {
            wanted.get(1) == ours.get(1)
        }
        (Some(major), Some(our_major)) => major == our_major,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_0_2_imports_of_any_patch_match() {
        assert!(is_provided("wasi:http/types@0.2.0"));
        assert!(is_provided("wasi:cli/environment@0.2.6"));
        assert!(is_provided("wasi:io/streams@0.2.99"));
    }

    /// The worlds whose imports [`super::runtime::linker`] provides, from our vendored WIT.
    const LINKED_WORLDS: &[&str] = &[
        "wasi:cli/imports@0.2.12",
        "wasi:http/proxy@0.2.12",
        "wasi:keyvalue/imports@0.2.0-draft",
    ];

    /// A component that imports everything `world` imports (and does nothing).
    fn importing_all_of(world: &str) -> anyhow::Result<Vec<u8>> {
        use wit_component::{ComponentEncoder, StringEncoding};
        use wit_parser::{ManglingAndAbi, Resolve};
        let mut resolve = Resolve::default();
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let (package, _) = resolve.push_dir(wit)?;
        let world = resolve.select_world(&[package], Some(world))?;
        let mut module = wit_component::dummy_module(&resolve, world, ManglingAndAbi::Standard32);
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            StringEncoding::UTF8,
        )?;
        ComponentEncoder::default().module(&module)?.encode()
    }

    #[test]
    fn provided_names_exactly_what_the_linker_provides() -> anyhow::Result<()> {
        let shape = crate::serving::pool::Shape {
            core_instances: 8,
            memories: 2,
            tables: 4,
        };
        let engine =
            crate::serving::runtime::engine(crate::serving::pool::Capacity::new(1, shape))?;
        let linker = crate::serving::runtime::linker(&engine)?;
        let mut imported = std::collections::BTreeSet::new();
        for world in LINKED_WORLDS {
            let component = Component::new(&engine, importing_all_of(world)?)?;
            linker
                .instantiate_pre(&component)
                .map_err(|error| anyhow::anyhow!("{world}: {error:#}"))?;
            let report = Report::of(&engine, &component);
            assert_eq!(report.missing(), Vec::<&str>::new(), "{world}");
            imported.extend(report.imports.into_iter().map(|(name, _)| name));
        }
        let listed: std::collections::BTreeSet<String> = PROVIDED
            .iter()
            .map(|(interface, version)| format!("{interface}@{version}"))
            .collect();
        assert_eq!(listed, imported, "PROVIDED drifted from the linker");
        Ok(())
    }

    #[test]
    fn other_minors_majors_and_drafts_do_not() {
        assert!(!is_provided("wasi:http/types@0.3.0"));
        assert!(!is_provided("wasi:keyvalue/store@0.2.0-draft2"));
        assert!(!is_provided("wasi:http/types"));
        assert!(!is_provided("example:missing/thing@1.0.0"));
        assert!(is_provided("wasi:keyvalue/store@0.2.0-draft"));
    }
}
