use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Size class of a runner machine, with the names and numbers used by Go myshoes.
///
/// The string forms are `nano`, `micro`, `small`, `medium`, `large`, `xlarge`, `2xlarge`,
/// `3xlarge` and `4xlarge`, numbered 1 to 9; `unknown` is 0. A Stadium maps each class to a
/// concrete machine or task size. Serde uses the string form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ResourceType {
    /// No size class was given (number 0).
    #[default]
    Unknown,
    /// `nano` (1).
    Nano,
    /// `micro` (2).
    Micro,
    /// `small` (3).
    Small,
    /// `medium` (4).
    Medium,
    /// `large` (5).
    Large,
    /// `xlarge` (6).
    XLarge,
    /// `2xlarge` (7).
    XLarge2,
    /// `3xlarge` (8).
    XLarge3,
    /// `4xlarge` (9).
    XLarge4,
}

impl ResourceType {
    /// Every resource type, ordered by number.
    pub const ALL: [ResourceType; 10] = [
        ResourceType::Unknown,
        ResourceType::Nano,
        ResourceType::Micro,
        ResourceType::Small,
        ResourceType::Medium,
        ResourceType::Large,
        ResourceType::XLarge,
        ResourceType::XLarge2,
        ResourceType::XLarge3,
        ResourceType::XLarge4,
    ];

    /// Returns the string form, for example `2xlarge`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceType::Unknown => "unknown",
            ResourceType::Nano => "nano",
            ResourceType::Micro => "micro",
            ResourceType::Small => "small",
            ResourceType::Medium => "medium",
            ResourceType::Large => "large",
            ResourceType::XLarge => "xlarge",
            ResourceType::XLarge2 => "2xlarge",
            ResourceType::XLarge3 => "3xlarge",
            ResourceType::XLarge4 => "4xlarge",
        }
    }

    /// Returns the number Go myshoes stores for this type (0 for `unknown`, 1 to 9 otherwise).
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// Looks a resource type up by its number; numbers above 9 return `None`.
    pub fn from_number(number: u8) -> Option<Self> {
        Self::ALL.get(usize::from(number)).copied()
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a string is not a resource type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resource type {value:?}: expected one of unknown, nano, micro, small, medium, large, xlarge, 2xlarge, 3xlarge, 4xlarge")]
pub struct ParseResourceTypeError {
    value: String,
}

impl FromStr for ResourceType {
    type Err = ParseResourceTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|resource_type| resource_type.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseResourceTypeError {
                value: s.to_owned(),
            })
    }
}

impl Serialize for ResourceType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResourceType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_go_myshoes() {
        let expected = [
            ("unknown", 0),
            ("nano", 1),
            ("micro", 2),
            ("small", 3),
            ("medium", 4),
            ("large", 5),
            ("xlarge", 6),
            ("2xlarge", 7),
            ("3xlarge", 8),
            ("4xlarge", 9),
        ];
        for (name, number) in expected {
            let parsed: ResourceType = name.parse().unwrap();
            assert_eq!(parsed.number(), number, "{name}");
            assert_eq!(parsed.as_str(), name);
            assert_eq!(ResourceType::from_number(number), Some(parsed));
        }
        assert_eq!(ResourceType::from_number(10), None);
    }

    #[test]
    fn serde_round_trips_string_form() {
        for resource_type in ResourceType::ALL {
            let json = serde_json::to_string(&resource_type).unwrap();
            assert_eq!(json, format!("\"{}\"", resource_type.as_str()));
            let back: ResourceType = serde_json::from_str(&json).unwrap();
            assert_eq!(back, resource_type);
        }
    }

    #[test]
    fn parse_rejects_unknown_name() {
        let error = "huge".parse::<ResourceType>().unwrap_err();
        assert!(error.to_string().contains("\"huge\""), "{error}");
        assert!(serde_json::from_str::<ResourceType>("\"huge\"").is_err());
    }
}
