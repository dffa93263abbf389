//! Single-quote shell quoting, the only way a value enters the generated scripts.

/// Quotes `value` as one bash word by wrapping it in single quotes.
///
/// Inside single quotes bash expands nothing, so `$`, backticks, `\`, `"`, `;`, `*` and
/// newlines stay literal. A single quote cannot appear inside single quotes, so each `'`
/// becomes `'\''`: close the quote, add an escaped quote, reopen. The result is the same
/// word for bash and POSIX sh. It cannot carry a NUL byte, so callers reject NUL first.
pub(crate) fn shell_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for character in value.chars() {
        if character == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(character);
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::shell_quote;
    use std::process::Command;

    #[test]
    fn quote_plain_word() {
        assert_eq!(shell_quote("linux"), "'linux'");
    }

    #[test]
    fn quote_empty_string() {
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn quote_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("'"), r"''\'''");
        assert_eq!(shell_quote("''"), r"''\'''\'''");
    }

    #[test]
    fn quote_leaves_other_characters() {
        let value = "a \"b\" $(c) `d` \\e ; f && g * \n 日本語";
        assert_eq!(shell_quote(value), format!("'{value}'"));
    }

    /// Checks the quoting against bash itself: each quoted word must come back unchanged.
    #[test]
    fn quote_round_trips_through_bash() {
        let values = [
            "",
            "plain",
            "with space",
            "it's",
            "'",
            "''leading and trailing''",
            "double \" quote",
            "$(touch pwned)",
            "`touch pwned`",
            "${HOME}",
            "back\\slash\\",
            "semi; colon && and || or",
            "glob * ? [a]",
            "new\nline",
            "tab\tchar",
            "GPU – 日本語",
            "-n",
            "!history",
        ];
        let mut script = String::new();
        for value in &values {
            script.push_str("printf '%s\\0' ");
            script.push_str(&shell_quote(value));
            script.push('\n');
        }

        let output = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("failed to run bash");
        assert!(output.status.success(), "bash failed: {output:?}");

        let printed = String::from_utf8(output.stdout).expect("bash printed invalid UTF-8");
        let words: Vec<&str> = printed.split_terminator('\0').collect();
        assert_eq!(words, values);
    }
}
