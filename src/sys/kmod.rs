//! Kernel modules: loading `.ko` files with `finit_module(2)`, dependencies first.
//!
//! A module tree is a directory like `/lib/modules/<release>` holding the (uncompressed) `.ko`
//! files and a `modules.dep` in depmod's format, one line per module:
//!
//! ```text
//! kernel/fs/xfs/xfs.ko: kernel/lib/libcrc32c.ko
//! ```
//!
//! plus, optionally, `modules.builtin` (modules compiled into the kernel: nothing to load) and
//! `modules.load` (the names the image wants loaded at boot, one a line). Module names are
//! compared the way the kernel does: `-` and `_` are the same character.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use super::{IoOp, SysError};

/// What happened to one module file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// The kernel accepted the module.
    Loaded(String),
    /// The module was loaded already (`EEXIST`).
    AlreadyLoaded(String),
    /// The module is built into the kernel.
    BuiltIn(String),
}

/// A parsed module tree.
#[derive(Debug, Clone, Default)]
pub struct ModuleTree {
    dir: PathBuf,
    /// Module name → (file relative to `dir`, dependency names).
    modules: HashMap<String, (String, Vec<String>)>,
    builtin: HashSet<String>,
}

/// Normalises a module name (`virtio-rng` and `virtio_rng` are the same module).
pub fn normalize(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// The module name of a path in `modules.dep` (`kernel/fs/xfs/xfs.ko.xz` → `xfs`).
fn name_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    normalize(stem)
}

impl ModuleTree {
    /// Reads `DIR/modules.dep` (required) and `DIR/modules.builtin` (optional).
    pub fn open(dir: &Path) -> Result<Self, SysError> {
        let dep_path = dir.join("modules.dep");
        let dep = super::read_text(&dep_path)?;
        let builtin = match std::fs::read_to_string(dir.join("modules.builtin")) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(SysError::io(
                    IoOp::Read,
                    dir.join("modules.builtin"),
                    source,
                ))
            }
        };
        Self::parse(dir, &dep_path, &dep, &builtin)
    }

    /// Parses the text of `modules.dep` and `modules.builtin` for a tree at `dir`.
    pub fn parse(dir: &Path, dep_path: &Path, dep: &str, builtin: &str) -> Result<Self, SysError> {
        let mut modules = HashMap::new();
        for (n, line) in dep.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((file, deps)) = line.split_once(':') else {
                return Err(SysError::parse(
                    dep_path,
                    format!("line {}: expected `FILE: DEPS...`, got {line:?}", n + 1),
                ));
            };
            let deps = deps.split_whitespace().map(name_of).collect();
            modules.insert(name_of(file), (file.trim().to_string(), deps));
        }
        let builtin = builtin
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(name_of)
            .collect();
        Ok(ModuleTree {
            dir: dir.to_path_buf(),
            modules,
            builtin,
        })
    }

    /// The directory of the tree.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the tree knows the module (as a file or as built in).
    pub fn contains(&self, name: &str) -> bool {
        let name = normalize(name);
        self.modules.contains_key(&name) || self.builtin.contains(&name)
    }

    /// The modules to load for `name`, dependencies first, each once; a built-in module yields
    /// nothing. Errors name the module that is missing and who needs it.
    pub fn load_order(&self, name: &str) -> Result<Vec<String>, SysError> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        self.visit(&normalize(name), None, &mut seen, &mut order)?;
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        needed_by: Option<&str>,
        seen: &mut HashSet<String>,
        order: &mut Vec<String>,
    ) -> Result<(), SysError> {
        if !seen.insert(name.to_string()) {
            return Ok(());
        }
        let Some((_, deps)) = self.modules.get(name) else {
            if self.builtin.contains(name) {
                return Ok(());
            }
            let why = match needed_by {
                Some(parent) => format!("module {name} (needed by {parent}) is not in the tree"),
                None => format!("module {name} is not in the tree"),
            };
            return Err(SysError::parse(self.dir.join("modules.dep"), why));
        };
        for dep in deps {
            self.visit(dep, Some(name), seen, order)?;
        }
        order.push(name.to_string());
        Ok(())
    }

    /// The file of a module, if the tree has one.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        self.modules
            .get(&normalize(name))
            .map(|(f, _)| self.dir.join(f))
    }

    /// Loads `name` and its dependencies with `finit_module(2)`.
    pub fn load(&self, name: &str) -> Result<Vec<Loaded>, SysError> {
        self.load_with(name, load_file)
    }

    /// [`load`](Self::load) with the loader injected (tests).
    pub fn load_with(
        &self,
        name: &str,
        mut loader: impl FnMut(&Path) -> Result<bool, SysError>,
    ) -> Result<Vec<Loaded>, SysError> {
        let name = normalize(name);
        if !self.modules.contains_key(&name) && self.builtin.contains(&name) {
            return Ok(vec![Loaded::BuiltIn(name)]);
        }
        let mut done = Vec::new();
        for module in self.load_order(&name)? {
            let Some(file) = self.file(&module) else {
                continue;
            };
            if loader(&file)? {
                done.push(Loaded::Loaded(module));
            } else {
                done.push(Loaded::AlreadyLoaded(module));
            }
        }
        Ok(done)
    }
}

impl ModuleTree {
    /// Loads `name` after its dependencies, giving `parameters` (`numdummies=2 …`, as
    /// `machine.kernel.modules[].parameters` joined by spaces) to `name` alone.
    pub fn load_with_parameters(
        &self,
        name: &str,
        parameters: &str,
    ) -> Result<Vec<Loaded>, SysError> {
        self.load_parameters_with(name, parameters, load_file_with_parameters)
    }

    /// [`load_with_parameters`](Self::load_with_parameters) with the loader injected (tests).
    pub fn load_parameters_with(
        &self,
        name: &str,
        parameters: &str,
        mut loader: impl FnMut(&Path, &str) -> Result<bool, SysError>,
    ) -> Result<Vec<Loaded>, SysError> {
        let target = self.file(name);
        self.load_with(name, |path| {
            let own = target.as_deref() == Some(path);
            loader(path, if own { parameters } else { "" })
        })
    }
}

/// The outcome of [`ModuleTree::load_all`].
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Modules the kernel accepted, in load order.
    pub loaded: Vec<String>,
    /// Modules that were loaded before (or are built in).
    pub present: Vec<String>,
    /// Modules that could not be found or loaded, with why.
    pub failed: Vec<(String, SysError)>,
}

impl ModuleTree {
    /// Loads every module of `names` with its dependencies, each file once, dependencies first.
    /// Best effort: a failure is recorded and the rest is still loaded (a module that needed the
    /// failed one then fails on its own, with the kernel's reason).
    pub fn load_all(&self, names: &[String]) -> LoadReport {
        self.load_all_with(names, load_file)
    }

    /// [`load_all`](Self::load_all) with the loader injected (tests).
    pub fn load_all_with(
        &self,
        names: &[String],
        mut loader: impl FnMut(&Path) -> Result<bool, SysError>,
    ) -> LoadReport {
        let mut report = LoadReport::default();
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        for name in names {
            let name = normalize(name);
            if !self.modules.contains_key(&name) && self.builtin.contains(&name) {
                if seen.insert(name.clone()) {
                    report.present.push(name);
                }
                continue;
            }
            if let Err(e) = self.visit(&name, None, &mut seen, &mut order) {
                report.failed.push((name, e));
            }
        }
        for module in order {
            let Some(file) = self.file(&module) else {
                continue;
            };
            match loader(&file) {
                Ok(true) => report.loaded.push(module),
                Ok(false) => report.present.push(module),
                Err(e) => report.failed.push((module, e)),
            }
        }
        report
    }
}

/// Loads one module file. `Ok(false)`: it was loaded already.
pub fn load_file(path: &Path) -> Result<bool, SysError> {
    load_file_with_parameters(path, "")
}

/// Loads one module file with module parameters (`key=value …`). `Ok(false)`: it was loaded
/// already (its parameters are then left as they are, as modprobe does).
pub fn load_file_with_parameters(path: &Path, parameters: &str) -> Result<bool, SysError> {
    let parameters = std::ffi::CString::new(parameters).map_err(|_| SysError::Parse {
        path: path.to_path_buf(),
        what: "module parameters contain a NUL byte".into(),
    })?;
    let file = File::open(path).map_err(SysError::at(IoOp::Open, path.to_path_buf()))?;
    match nix::kmod::finit_module(&file, &parameters, nix::kmod::ModuleInitFlags::empty()) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EEXIST) => Ok(false),
        Err(source) => Err(SysError::Syscall {
            call: format!("finit_module {}", path.display()),
            source,
        }),
    }
}

/// `<modules_root>/<release of the running kernel>` (`/lib/modules/6.1.0-…`), if that
/// directory exists: where this kernel's modules are.
pub fn running_release_dir(modules_root: &Path) -> Option<PathBuf> {
    let release = nix::sys::utsname::uname().ok()?;
    let dir = modules_root.join(release.release());
    dir.is_dir().then_some(dir)
}

/// Reads a list of module names (`modules.load`, `machine.kernel.modules`): one a line,
/// `#` comments and blank lines ignored.
pub fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(normalize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/char/hw_random/virtio-rng.ko.xz: kernel/drivers/virtio/virtio.ko
kernel/fs/xfs/xfs.ko: kernel/lib/libcrc32c.ko
";

    fn tree() -> ModuleTree {
        ModuleTree::parse(
            Path::new("/m"),
            Path::new("/m/modules.dep"),
            DEP,
            "kernel/lib/libcrc32c.ko\nkernel/drivers/block/loop.ko\n",
        )
        .unwrap()
    }

    #[test]
    fn dependencies_come_first_and_once() {
        let t = tree();
        assert_eq!(
            t.load_order("virtio_net").unwrap(),
            [
                "failover",
                "net_failover",
                "virtio",
                "virtio_ring",
                "virtio_net"
            ]
        );
        assert_eq!(
            t.load_order("virtio_pci").unwrap(),
            [
                "virtio_pci_modern_dev",
                "virtio",
                "virtio_ring",
                "virtio_pci"
            ]
        );
    }

    #[test]
    fn dashes_and_underscores_are_the_same() {
        let t = tree();
        assert_eq!(
            t.load_order("virtio-rng").unwrap(),
            ["virtio", "virtio_rng"]
        );
        assert_eq!(
            t.file("virtio_rng").unwrap(),
            Path::new("/m/kernel/drivers/char/hw_random/virtio-rng.ko.xz")
        );
    }

    #[test]
    fn builtins_are_skipped() {
        let t = tree();
        // xfs's dependency libcrc32c is built in: only xfs is loaded.
        assert_eq!(t.load_order("xfs").unwrap(), ["xfs"]);
        let mut calls = Vec::new();
        let r = t
            .load_with("loop", |p| {
                calls.push(p.to_path_buf());
                Ok(true)
            })
            .unwrap();
        assert_eq!(r, [Loaded::BuiltIn("loop".into())]);
        assert!(calls.is_empty());
        assert!(t.contains("loop") && t.contains("xfs") && !t.contains("nope"));
    }

    #[test]
    fn missing_module_names_who_needs_it() {
        let t = ModuleTree::parse(
            Path::new("/m"),
            Path::new("/m/modules.dep"),
            "kernel/a.ko: kernel/b.ko\n",
            "",
        )
        .unwrap();
        let e = t.load_order("a").unwrap_err().to_string();
        assert!(
            e.contains("module b (needed by a) is not in the tree"),
            "{e}"
        );
        let e = t.load_order("zzz").unwrap_err().to_string();
        assert!(e.contains("module zzz is not in the tree"), "{e}");
    }

    #[test]
    fn release_dir_is_the_running_kernels() {
        let root = tempfile::tempdir().expect("tempdir");
        assert_eq!(running_release_dir(root.path()), None);
        let release = nix::sys::utsname::uname().expect("uname");
        let dir = root.path().join(release.release());
        std::fs::create_dir(&dir).expect("mkdir");
        assert_eq!(running_release_dir(root.path()), Some(dir));
    }

    #[test]
    fn parameters_go_to_the_named_module_only() {
        let t = tree();
        let mut calls = Vec::new();
        let r = t
            .load_parameters_with("xfs", "allocsize=64k", |p, params| {
                calls.push((p.to_path_buf(), params.to_string()));
                Ok(true)
            })
            .unwrap();
        // libcrc32c is built in: only xfs's file is loaded, with the parameters.
        assert_eq!(
            calls,
            [(
                PathBuf::from("/m/kernel/fs/xfs/xfs.ko"),
                "allocsize=64k".to_string()
            )]
        );
        assert_eq!(r, [Loaded::Loaded("xfs".into())]);
        let mut calls = Vec::new();
        t.load_parameters_with("virtio_net", "napi_tx=1", |p, params| {
            calls.push((
                p.file_name().unwrap().to_string_lossy().into_owned(),
                params.to_string(),
            ));
            Ok(true)
        })
        .unwrap();
        assert_eq!(
            calls.last().unwrap(),
            &("virtio_net.ko".to_string(), "napi_tx=1".to_string())
        );
        assert!(
            calls[..calls.len() - 1].iter().all(|(_, p)| p.is_empty()),
            "{calls:?}"
        );
    }

    #[test]
    fn load_with_reports_already_loaded() {
        let t = tree();
        let mut files = Vec::new();
        let r = t
            .load_with("virtio_net", |p| {
                files.push(p.to_path_buf());
                // virtio and virtio_ring are loaded already.
                Ok(!p.to_string_lossy().contains("/virtio/"))
            })
            .unwrap();
        assert_eq!(files[0], Path::new("/m/kernel/net/core/failover.ko"));
        assert_eq!(
            r,
            [
                Loaded::Loaded("failover".into()),
                Loaded::Loaded("net_failover".into()),
                Loaded::AlreadyLoaded("virtio".into()),
                Loaded::AlreadyLoaded("virtio_ring".into()),
                Loaded::Loaded("virtio_net".into()),
            ]
        );
    }

    #[test]
    fn load_all_loads_each_file_once_and_goes_on_after_failures() {
        let t = tree();
        let names: Vec<String> = ["virtio_pci", "virtio_net", "loop", "nope", "xfs"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut calls = Vec::new();
        let r = t.load_all_with(&names, |p| {
            let name = name_of(&p.to_string_lossy());
            calls.push(name.clone());
            if name == "virtio_pci_modern_dev" {
                return Err(SysError::parse(p, "refused"));
            }
            Ok(name != "virtio_ring")
        });
        assert_eq!(
            calls,
            [
                "virtio_pci_modern_dev",
                "virtio",
                "virtio_ring",
                "virtio_pci",
                "failover",
                "net_failover",
                "virtio_net",
                "xfs"
            ]
        );
        assert_eq!(
            r.loaded,
            [
                "virtio",
                "virtio_pci",
                "failover",
                "net_failover",
                "virtio_net",
                "xfs"
            ]
        );
        assert_eq!(r.present, ["loop", "virtio_ring"]);
        let failed: Vec<&str> = r.failed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(failed, ["nope", "virtio_pci_modern_dev"]);
    }

    #[test]
    fn bad_line_is_an_error_with_the_file() {
        let e = ModuleTree::parse(
            Path::new("/m"),
            Path::new("/m/modules.dep"),
            "garbage\n",
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/m/modules.dep") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn lists_ignore_comments() {
        assert_eq!(
            parse_list("# boot\nvirtio-pci\n\nloop # block\n"),
            ["virtio_pci", "loop"]
        );
    }

    #[test]
    fn open_reads_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("modules.dep"), DEP).unwrap();
        let t = ModuleTree::open(dir.path()).unwrap();
        assert!(t
            .load_order("xfs")
            .unwrap_err()
            .to_string()
            .contains("libcrc32c"));
        assert!(ModuleTree::open(&dir.path().join("none")).is_err());
    }
}
