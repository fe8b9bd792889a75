//! Who may call a hub method or connect to a hub, as data: the server evaluates it against the
//! connection's principal (`#[authorize(...)]` in the macros, [`HubMethods::authorize`] for
//! closure hubs).
//!
//! [`HubMethods::authorize`]: super::HubMethods::authorize

use std::fmt;

/// One condition a caller must meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Requirement {
    /// An authenticated user (a principal with a user id).
    Authenticated,
    /// At least one of these roles (the principal's `role` claim, which may list several,
    /// separated by commas or spaces).
    AnyRole(Vec<String>),
    /// A claim, with this value when one is given (a claim listing several values, separated by
    /// commas or spaces, matches any of them).
    Claim {
        /// The claim's name.
        name: String,
        /// The value it must have (any value when `None`).
        value: Option<String>,
    },
    /// A named policy the server was given (e.g. `HubServerBuilder::policy`): a function of the
    /// principal and the request.
    Policy(String),
}

impl Requirement {
    /// At least one of `roles`.
    pub fn role(roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Requirement::AnyRole(roles.into_iter().map(Into::into).collect())
    }

    /// The claim `name` (with any value).
    pub fn claim(name: impl Into<String>) -> Self {
        Requirement::Claim {
            name: name.into(),
            value: None,
        }
    }

    /// The claim `name` with `value`.
    pub fn claim_value(name: impl Into<String>, value: impl Into<String>) -> Self {
        Requirement::Claim {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// The named policy.
    pub fn policy(name: impl Into<String>) -> Self {
        Requirement::Policy(name.into())
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Authenticated => f.write_str("an authenticated user"),
            Requirement::AnyRole(roles) if roles.len() == 1 => write!(f, "role `{}`", roles[0]),
            Requirement::AnyRole(roles) => write!(
                f,
                "one of the roles {}",
                roles
                    .iter()
                    .map(|role| format!("`{role}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Requirement::Claim { name, value: None } => write!(f, "claim `{name}`"),
            Requirement::Claim {
                name,
                value: Some(value),
            } => write!(f, "claim `{name}` = `{value}`"),
            Requirement::Policy(name) => write!(f, "policy `{name}`"),
        }
    }
}

/// What a method (or a hub, to connect) requires: every requirement must hold. Empty: anyone,
/// anonymous users included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorization {
    /// The requirements, all of which must hold.
    pub requirements: Vec<Requirement>,
}

impl Authorization {
    /// No requirement: anyone may call.
    pub fn anyone() -> Self {
        Authorization::default()
    }

    /// These requirements, all of which must hold (repeats are kept once).
    pub fn all(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        requirements
            .into_iter()
            .fold(Authorization::anyone(), Authorization::and)
    }

    /// Whether anyone may call.
    pub fn is_open(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Adds a requirement (unless it is already there).
    pub fn and(mut self, requirement: Requirement) -> Self {
        if !self.requirements.contains(&requirement) {
            self.requirements.push(requirement);
        }
        self
    }

    /// A sentence for documentation: "Requires an authenticated user and role `admin`.", or
    /// `None` when anyone may call.
    pub fn describe(&self) -> Option<String> {
        if self.is_open() {
            return None;
        }
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        Some(format!("Requires {}.", parts.join(" and ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_read_as_sentences() {
        assert_eq!(Authorization::anyone().describe(), None);
        let admin = Authorization::all([Requirement::Authenticated, Requirement::role(["admin"])]);
        assert_eq!(
            admin.describe().as_deref(),
            Some("Requires an authenticated user and role `admin`.")
        );
        let more = Authorization::anyone()
            .and(Requirement::role(["a", "b"]))
            .and(Requirement::claim_value("scope", "write"))
            .and(Requirement::policy("adult"))
            .and(Requirement::policy("adult"));
        assert_eq!(
            more.describe().as_deref(),
            Some("Requires one of the roles `a`, `b` and claim `scope` = `write` and policy `adult`.")
        );
    }
}
