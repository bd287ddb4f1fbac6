//! Users: who may call the API, with which role and plan.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Who is asking for a piece of work: every use case in `work::` takes one, whether the act
/// comes from an API token, the dashboard, the CLI, a schedule, or a job that chains work for
/// its owner (then `token_id` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user.
    pub user_id: Uuid,
    /// Their role.
    pub role: Role,
    /// The token used, when the act came through one.
    pub token_id: Option<Uuid>,
    /// The user's plan.
    pub plan: String,
}

impl Caller {
    /// Whether the caller is an admin (unbounded by plans, sees everything).
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The operator at the command line: an admin with the nil user id, acting on the
    /// database directly. Acts that would make it the owner of a new object (enqueueing a job
    /// for itself, minting itself a token) are not offered by the CLI.
    pub fn operator() -> Self {
        Self {
            user_id: Uuid::nil(),
            role: Role::Admin,
            token_id: None,
            plan: "operator".into(),
        }
    }

    /// The owner filter for reads: `None` (everything) for admins, else the caller's id.
    pub fn owner_filter(&self) -> Option<Uuid> {
        (!self.is_admin()).then_some(self.user_id)
    }
}

/// What a user may do: admins manage users and see everything; users see their own resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Manages users, tokens and schedules; sees every resource.
    Admin,
    /// Sees and changes only their own resources.
    User,
}

impl Role {
    /// Every role, in the order the API lists them.
    pub const ALL: [Role; 2] = [Role::Admin, Role::User];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(format!("unknown role {other:?}: expected admin or user")),
        }
    }
}

/// A user about to be created, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Display name, 1 to 200 characters after trimming.
    pub name: String,
    /// Optional contact address, unique across users (case-insensitive).
    pub email: Option<String>,
    /// Role.
    pub role: Role,
    /// Plan name.
    pub plan: String,
}

impl NewUser {
    /// Check and normalise the fields of a new user.
    pub fn parse(
        name: &str,
        email: Option<&str>,
        role: Role,
        plan: Option<&str>,
    ) -> Result<Self, InvalidField> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(InvalidField::new(
                "name",
                "name must be 1 to 200 characters",
            ));
        }
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            None => None,
            Some(e) => Some(parse_email(e).map_err(|detail| InvalidField::new("email", detail))?),
        };
        let plan = plan.map(str::trim).unwrap_or("free");
        if !is_plan_name(plan) {
            return Err(InvalidField::new(
                "plan",
                "plan must be 1 to 64 characters of a-z, 0-9, _ and -",
            ));
        }
        Ok(Self {
            name: name.to_string(),
            email,
            role,
            plan: plan.to_string(),
        })
    }
}

/// A value refused by [`NewUser::parse`], with the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// The field at fault: `name`, `email` or `plan`.
    pub field: &'static str,
    /// What is wrong with it, naming it.
    pub detail: String,
}

impl InvalidField {
    fn new(field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for InvalidField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for InvalidField {}

/// Whether `name` is a well-formed plan name: 1 to 64 characters of a-z, 0-9, `_` and `-`.
pub fn is_plan_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && (name.chars())
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Check an IANA time zone name, e.g. `Europe/Berlin`.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse().map_err(|_| {
        format!("timezone {name:?} is not an IANA time zone like UTC or Europe/Berlin")
    })
}

fn parse_email(email: &str) -> Result<String, String> {
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email.to_string())
    } else {
        Err(format!(
            "email {email:?} is not an address like name@example.com"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_user_trims_name_and_defaults_plan_to_free() {
        let user = NewUser::parse("  Ada ", None, Role::User, None).unwrap();
        assert_eq!(user.name, "Ada");
        assert_eq!(user.plan, "free");
    }

    #[test]
    fn new_user_rejects_empty_name_bad_email_and_bad_plan() {
        assert!(NewUser::parse("  ", None, Role::User, None).is_err());
        let bad_email = NewUser::parse("a", Some("not-an-email"), Role::User, None);
        assert_eq!(bad_email.map_err(|e| e.field), Err("email"));
        assert!(NewUser::parse("a", Some("a@b"), Role::User, None).is_err());
        assert!(NewUser::parse("a", None, Role::User, Some("Pro Plan")).is_err());
    }

    #[test]
    fn role_round_trips_through_its_name() {
        for role in [Role::Admin, Role::User] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
