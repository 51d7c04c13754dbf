//! A minimal `--name value` flag parser for the bench binaries.
//!
//! Each binary takes a handful of numeric flags; a full argument-parser crate would cost more
//! build time than the 80 lines here. Flags are `--name value` or `--name=value`, each at most
//! once; anything not taken by the binary is reported as unknown by [`Flags::finish`].

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// Parsed `--name value` pairs, consumed with [`Flags::take`] and closed with [`Flags::finish`].
#[derive(Debug, Default)]
pub struct Flags(HashMap<String, String>);

impl Flags {
    /// Parses arguments (without the program name).
    ///
    /// # Errors
    /// A positional argument, a flag without a value, or a flag given twice.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let (name, value) = if let Some((name, value)) = flag.split_once('=') {
                (name.to_owned(), value.to_owned())
            } else {
                let value = args
                    .next()
                    .ok_or_else(|| format!("--{flag} needs a value"))?;
                (flag.to_owned(), value)
            };
            if map.insert(name.clone(), value).is_some() {
                return Err(format!("--{name} is given twice"));
            }
        }
        Ok(Self(map))
    }

    /// Removes and parses `--name`, or returns `default` when it is absent.
    ///
    /// # Errors
    /// The value does not parse as `T`.
    pub fn take<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: Display,
    {
        Ok(self.take_opt(name)?.unwrap_or(default))
    }

    /// Removes and parses `--name` if present.
    ///
    /// # Errors
    /// The value does not parse as `T`.
    pub fn take_opt<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, String>
    where
        T::Err: Display,
    {
        self.0
            .remove(name)
            .map(|v| v.parse::<T>().map_err(|e| format!("--{name} {v:?}: {e}")))
            .transpose()
    }

    /// Removes and parses `--name`, which must be present.
    ///
    /// # Errors
    /// The flag is absent or its value does not parse as `T`.
    pub fn require<T: FromStr>(&mut self, name: &str) -> Result<T, String>
    where
        T::Err: Display,
    {
        self.take_opt(name)?
            .ok_or_else(|| format!("--{name} is required"))
    }

    /// Fails if a flag was given that no [`Flags::take`] asked for.
    ///
    /// # Errors
    /// Lists the unknown flags.
    pub fn finish(self) -> Result<(), String> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut names: Vec<_> = self.0.into_keys().map(|n| format!("--{n}")).collect();
        names.sort();
        Err(format!("unknown flag(s): {}", names.join(", ")))
    }
}

/// True if the arguments ask for help (`-h` or `--help` anywhere).
pub fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "-h" || a == "--help")
}

/// The `main` of a report binary: prints `usage` for `-h`/`--help`, else runs `run` with
/// the arguments; an error becomes one line `NAME: error` on stderr and exit code 1.
pub fn main_with(
    name: &str,
    usage: &str,
    run: impl FnOnce(Vec<String>) -> Result<(), String>,
) -> std::process::ExitCode {
    use std::io::Write as _;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if wants_help(&args) {
        writeln!(std::io::stdout(), "{usage}").map_err(|e| e.to_string())
    } else {
        run(args)
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Ignored: if stderr is gone there is nowhere left to report to.
            let _ignored = writeln!(std::io::stderr(), "{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Parses an unsigned integer written in decimal or with a `0x` prefix (for bit masks).
///
/// # Errors
/// Not a number, or out of range.
pub fn parse_u32(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_both_forms_and_rejects_unknown() {
        let mut f = Flags::parse(args(&["--polls", "5", "--states=0xF37", "--x", "1"])).unwrap();
        assert_eq!(f.take("polls", 1u32).unwrap(), 5);
        assert_eq!(f.take("interval-ms", 10u64).unwrap(), 10);
        assert_eq!(
            parse_u32(&f.take_opt::<String>("states").unwrap().unwrap()),
            Ok(0xF37)
        );
        assert_eq!(f.finish().unwrap_err(), "unknown flag(s): --x");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Flags::parse(args(&["5"])).is_err());
        assert!(Flags::parse(args(&["--polls"])).is_err());
        assert!(Flags::parse(args(&["--a", "1", "--a", "2"])).is_err());
        let mut f = Flags::parse(args(&["--polls", "x"])).unwrap();
        assert!(f.take("polls", 1u32).is_err());
    }
}
