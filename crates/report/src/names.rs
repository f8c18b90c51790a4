//! The libraries name a setting as the config names it (`max_threads`);
//! what a user of the CLI reads names the flag that sets it.

/// Each setting's name in the libraries' messages, and the flag for it.
const FLAGS: [(&str, &str); 4] = [
    ("ca_cert_pem, the trusted roots", "--ca-cert"),
    ("max_threads", "--max-threads"),
    ("request_timeout", "--timeout"),
    ("connect_timeout", "--connect-timeout"),
];

/// `text` with every setting named by its flag.
pub fn named(text: &str) -> String {
    FLAGS.iter().fold(text.to_owned(), |t, (setting, flag)| {
        t.replace(setting, flag)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_as_flags() {
        assert_eq!(
            named("the configured thread limit is 5 (max_threads)"),
            "the configured thread limit is 5 (--max-threads)"
        );
        assert_eq!(
            named("trust that certificate (ca_cert_pem, the trusted roots)"),
            "trust that certificate (--ca-cert)"
        );
        assert_eq!(
            named("within the 2s connect timeout (raise connect_timeout)"),
            "within the 2s connect timeout (raise --connect-timeout)"
        );
        assert_eq!(named("nothing to name"), "nothing to name");
    }
}
