//! Per-kind unit tests with tricky positives and look-alikes, using reference values from outside
//! the corpus generator (IBAN registry examples, card networks' published test numbers, AWS's
//! documented example keys, Ofcom/NANP fictional phone ranges).

use lumen_redact::{Kind, RedactConfig, Redactor};

fn redactor() -> Redactor {
    Redactor::new(&RedactConfig::default()).expect("default config")
}

#[track_caller]
fn redacts(input: &str, expected: &str) {
    let r = redactor();
    let (out, _) = r.redact_text(input);
    assert_eq!(out, expected, "input: {input:?}");
}

#[track_caller]
fn untouched(input: &str) {
    let r = redactor();
    let (out, f) = r.redact_text(input);
    assert_eq!(
        out,
        input,
        "should be untouched, found {:?}",
        f.iter().collect::<Vec<_>>()
    );
}

#[test]
fn email() {
    redacts("mail john.doe@example.com now", "mail [EMAIL] now");
    redacts("<Jane_Doe+llm@mail.example.co.uk>", "<[EMAIL]>");
    redacts(
        "mailto:ops-team@acme.io?subject=x",
        "mailto:[EMAIL]?subject=x",
    );
    redacts("メールはtaro.yamada@example.jpです", "メールは[EMAIL]です");
    redacts("\"user\":\"a.b@c.de\"", "\"user\":\"[EMAIL]\"");
    // An e-mail inside a URL is an e-mail.
    redacts(
        "https://x.io/u/bob@example.com/edit",
        "https://x.io/u/[EMAIL]/edit",
    );
    untouched("icon@2x.png and logo@3x.webp");
    untouched("@alice thanks, and @types/node, and admin@localhost, foo@bar");
    untouched("@app.route(\"/\") and user at example dot com");
}

#[test]
fn phone() {
    for p in [
        "+1 415-555-0132",
        "(415) 555-0132",
        "+1 (415) 555-0132",
        "415.555.0132",
        "1-800-555-0199",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "020 7946 0958",
        "07700 900123",
        "+49 30 123456789",
        "030 12345678",
        "0151 12345678",
        "+33 1 23 45 67 89",
        "06 12 34 56 78",
        "03-1234-5678",
        "+81 3-1234-5678",
        "+61 2 9876 5432",
        "+14155550132",
        "+86 138 0013 8000",
    ] {
        redacts(&format!("call {p} today"), "call [PHONE] today");
        redacts(&format!("call {p} 10.0.0.1"), "call [PHONE] [IP]");
    }
    // Not phones: dates, times, versions, short numbers, ids, timestamps, prices.
    untouched("on 2024-01-15 at 12:30:45, build 10.0.19045.3803, v1.2.3");
    untouched("2024-01-15T10:30:45.123+05:30 and 1705312245");
    untouched("order #100234, ORD-20240115, room 101, call 911, ext. 4521");
    untouched("price $1,299.99 or €49,90; +5 points; 24/7; Q3 2024");
    untouched("dates 01.02.2024, 15/01/2024, 05 11 2023 14:30, 01-02-2024 13:45");
    untouched("ISBN 978-3-16-148410-0 and 0-306-40615-2");
    untouched("N11 codes are not area codes: 411-555-0132");
    untouched("mixed separators 415-555.0132");
}

#[test]
fn card() {
    // Published test numbers of the networks (all Luhn-valid).
    for c in [
        "4111 1111 1111 1111",
        "4242424242424242",
        "5555-5555-5555-4444",
        "2223 0031 2200 3222",
        "3782 822463 10005",
        "371449635398431",
        "6011 1111 1111 1117",
        "3530 1113 3330 0000",
        "3056 930902 5904",
        "6200000000000005",
    ] {
        redacts(&format!("card: {c}, exp 12/27"), "card: [CARD], exp 12/27");
    }
    redacts(
        "pay with\\n4111111111111111 please",
        "pay with\\n[CARD] please",
    );
    redacts("4111 1111 1111 1111 123", "[CARD] 123");
    redacts("4111 1111 1111 1111 10.0.0.1", "[CARD] [IP]");
    redacts("4111111111111111 2024", "[CARD] 2024");
    // Luhn-invalid, wrong length for the network, or not an issuer range.
    untouched("4111 1111 1111 1112");
    untouched("4111111111111112");
    untouched("3782 8224 6310 0055"); // Amex prefix but 16 digits
    untouched("IMEI 352099001761481"); // Luhn-valid 15 digits, not a card range/length
    untouched("9400 1000 0000 0000 0000 00"); // USPS tracking
    untouched("epoch ms 1705312245123, sha 4111111111111111abc");
    untouched("4111-1111 1111-1111"); // mixed separators
}

#[test]
fn iban() {
    // Examples from the SWIFT IBAN registry.
    for i in [
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "DE89 3704 0044 0532 0130 00",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91 ABNA 0417 1643 00",
        "BE68 5390 0754 7034",
        "CH93 0076 2011 6238 5295 7",
        "ES91 2100 0418 4502 0005 1332",
        "IT60 X054 2811 1010 0000 0123 456",
        "NO93 8601 1117 947",
        "PL61 1090 1014 0000 0712 1981 2874",
        "SE45 5000 0000 0583 9825 7466",
        "AT61 1904 3002 3457 3201",
        "IE29 AIBK 9311 5212 3456 78",
        "PT50 0002 0123 1234 5678 9015 4",
    ] {
        redacts(&format!("IBAN: {i}."), "IBAN: [IBAN].");
    }
    redacts(
        "to DE89370400440532013000 BIC COBADEFFXXX",
        "to [IBAN] BIC COBADEFFXXX",
    );
    redacts(
        "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX",
        "IBAN [IBAN] BIC COBADEFFXXX",
    );
    // Bad checksum, wrong length for the country, lowercase-glued.
    untouched("DE89 3704 0044 0532 0130 01");
    untouched("GB82 WEST 1234 5698 7654 3");
    untouched("XDE89370400440532013000");
}

#[test]
fn national_id() {
    redacts("SSN 123-45-6789.", "SSN [NATIONAL_ID].");
    redacts("SSN 123 45 6789.", "SSN [NATIONAL_ID].");
    redacts("NINO AB123456C", "NINO [NATIONAL_ID]");
    redacts("NI: AB 12 34 56 C", "NI: [NATIONAL_ID]");
    redacts("DNI 12345678Z", "DNI [NATIONAL_ID]");
    redacts("NIE X1234567L", "NIE [NATIONAL_ID]");
    // Invalid SSN areas/groups/serials, nine plain digits, bad NINO prefixes, wrong DNI letter.
    untouched("000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000");
    untouched("id 123456789");
    untouched("BG123456A GB123456A QQ123456C AB123456E");
    untouched("12345678A X1234567A");
    untouched("part 123-45-6789-01"); // part of a longer number
}

#[test]
fn ip() {
    redacts("from 192.168.1.10:8080", "from [IP]:8080");
    redacts("ssh root@10.0.0.5 -p 22", "ssh root@[IP] -p 22");
    redacts("GET http://203.0.113.7/healthz", "GET http://[IP]/healthz");
    redacts(
        "v6 2001:db8::1 and [fe80::1ff:fe23:4567:890a]:443",
        "v6 [IP] and [[IP]]:443",
    );
    redacts(
        "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334.",
        "full [IP].",
    );
    redacts("lo ::1, mapped ::ffff:192.0.2.128", "lo [IP], mapped [IP]");
    redacts(
        "addr 2001:db8::1: connection refused",
        "addr [IP]: connection refused",
    );
    // Versions, dotted sequences, out-of-range octets, times, MACs, code paths.
    untouched("v1.2.3.4 and version 1.2.3.4 and 1.2.3 and 10.0.19045.3803");
    untouched("256.1.1.1 999.999.999.999 01.02.03.04 1.3.6.1.4.1.311");
    untouched("at 12:30:45 and 12:30:45.123, mac 00:1A:2B:3C:4D:5E");
    untouched("std::collections::HashMap, Vec::<u8>::new(), a::b, add::dead");
}

#[test]
fn api_keys() {
    let openai = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7CD0EF3GH6IJ9KL2MN5OP8QR1ST4UV";
    redacts(
        &format!("OPENAI_API_KEY={openai}\n"),
        "OPENAI_API_KEY=[API_KEY]\n",
    );
    let ant = "sk-ant-api03-AbCdEf0123456789_AbCdEf0123456789-AbCdEf0123456789AbCdEf0123456789AbCdEf0123456789AbCdEfAA";
    redacts(&format!("key {ant} oops"), "key [API_KEY] oops");
    redacts("sk-0123456789abcdef0123456789abcdef", "[API_KEY]"); // lowercase-hex providers
    redacts(
        "?key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q&x=1",
        "?key=[API_KEY]&x=1",
    );
    redacts("sk_live_51HqLyjWDarjtT1zdp7dcXzFa", "[API_KEY]");
    redacts(
        "Authorization: Bearer 8f4a2c1e9b7d6a5f3e2d1c0b9a8f7e6d",
        "Authorization: Bearer [API_KEY]",
    );
    redacts(
        "x-api-key: Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0F",
        "x-api-key: [API_KEY]",
    );
    // Words and placeholders that are not keys.
    untouched("we use sk-learn and scikit-learn, sk-hynix memory");
    untouched("sk-learn-tutorial-for-beginners-2024");
    untouched("OPENAI_API_KEY=sk-your-api-key-here");
    untouched("sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    untouched("Authorization: Bearer YOUR_TOKEN_HERE, Bearer token");
    untouched("task-1234567890abcdefghijklmnopqrstu"); // no word boundary before sk
}

#[test]
fn aws() {
    // AWS's documented example credentials.
    redacts(
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "aws_access_key_id = [AWS_KEY]",
    );
    redacts(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        "aws_secret_access_key = [AWS_KEY]\n",
    );
    redacts(
        "{\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}",
        "{\"SecretAccessKey\": \"[AWS_KEY]\"}",
    );
    redacts(
        "export AWS_SECRET_ACCESS_KEY='wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
        "export AWS_SECRET_ACCESS_KEY='[AWS_KEY]'",
    );
    redacts("temp ASIAY34FZKBOKMUTVV7A ok", "temp [AWS_KEY] ok");
    // Too short, unlabelled 40-char strings, too long.
    untouched("AKIAEXAMPLE and AKIA123");
    untouched("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    untouched("AKIAIOSFODNN7EXAMPLEX");
}

#[test]
fn github_slack_jwt() {
    redacts(
        "token ghp_16C7e42F292c6912E7710c838347Ae178B4a ok",
        "token [GITHUB_TOKEN] ok",
    );
    redacts(
        "GITHUB_TOKEN=github_pat_11ABCDEFG0123456789abc_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW",
        "GITHUB_TOKEN=[GITHUB_TOKEN]",
    );
    redacts(
        "git clone https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r.git",
        "git clone https://[GITHUB_TOKEN]@github.com/o/r.git",
    );
    untouched("gh-pages, ghp_ and ghp_short");
    redacts(
        "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
        "[SLACK_TOKEN]",
    );
    redacts(
        "post to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX now",
        "post to [SLACK_TOKEN] now",
    );
    untouched("xoxo, xoxo-gossip-girl-forever");
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    // A JWT inside a Bearer header is one secret, typed as JWT.
    redacts(
        &format!("Authorization: Bearer {jwt}\n"),
        "Authorization: Bearer [JWT]\n",
    );
    redacts(
        &format!("Cookie: session={jwt}; Path=/"),
        "Cookie: session=[JWT]; Path=/",
    );
    untouched("header eyJhbGciOiJIUzI1NiJ9 only");
    untouched("eyJub3QiOiJhIGp3dCJ9.eyJ4IjoxfQ.c2lnbmF0dXJlLXBhcnQ"); // header has no alg
}

#[test]
fn private_keys() {
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq98\nAbCd+/==\n-----END RSA PRIVATE KEY-----";
    redacts(
        &format!("key:\n{pem}\nthanks"),
        "key:\n[PRIVATE_KEY]\nthanks",
    );
    let escaped = pem.replace('\n', "\\n");
    redacts(
        &format!("{{\"k\":\"{escaped}\\n\"}}"),
        "{\"k\":\"[PRIVATE_KEY]\\n\"}",
    );
    redacts(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n-----END OPENSSH PRIVATE KEY-----",
        "[PRIVATE_KEY]",
    );
    // Truncated block: redacted through the end of the base64 body.
    redacts(
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIEvQIBAD (truncated)",
        "[PRIVATE_KEY] (truncated)",
    );
    untouched("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOC\n-----END PUBLIC KEY-----");
    untouched("-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----");
}

#[test]
fn findings_count_per_kind() {
    let r = redactor();
    let (_, f) = r.redact_text("a@b.io c@d.io 4111 1111 1111 1111 10.0.0.1");
    assert_eq!(f.get(Kind::Email), 2);
    assert_eq!(f.get(Kind::Card), 1);
    assert_eq!(f.get(Kind::Ip), 1);
    assert_eq!(f.total(), 4);
    let names: Vec<_> = f.iter().collect();
    assert_eq!(names, [("email", 2), ("card", 1), ("ip", 1)]);
}

#[test]
fn nothing_found_borrows() {
    let r = redactor();
    let (out, f) = r.redact_text("plain text, nothing to see: v1.2.3 at 10:30");
    assert!(matches!(out, std::borrow::Cow::Borrowed(_)));
    assert!(f.is_empty());
}

#[test]
fn disabled_kinds_are_not_redacted() {
    let cfg = RedactConfig {
        kinds: vec![Kind::Email],
        ..RedactConfig::default()
    };
    let r = Redactor::new(&cfg).expect("config");
    let (out, _) = r.redact_text("a@b.io 4111 1111 1111 1111 10.0.0.1");
    assert_eq!(out, "[EMAIL] 4111 1111 1111 1111 10.0.0.1");
}

#[test]
fn find_reports_spans_and_names() {
    let r = redactor();
    let t = "x a@b.io y";
    let m = r.find(t);
    assert_eq!(m.len(), 1);
    assert_eq!(&t[m[0].range()], "a@b.io");
    assert_eq!(m[0].kind, Some(Kind::Email));
    assert_eq!(m[0].name, "email");
    assert_eq!(m[0].placeholder, "[EMAIL]");
}

#[test]
fn documented_edges() {
    // PGP armour, with its header line and checksum, through the END line.
    redacts(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\nlQOYBF0Z\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----\nok",
        "[PRIVATE_KEY]\nok",
    );
    // A `\/`-escaped webhook is found by the JSON path, which decodes the string.
    let r = redactor();
    let (out, _) = r.redact_json_str(r#"{"url":"https:\/\/hooks.slack.com\/services\/T00000000\/B00000000\/XXXXXXXXXXXXXXXXXXXXXXXX"}"#);
    assert_eq!(out, r#"{"url":"[SLACK_TOKEN]"}"#);
    // Versions must be marked as such to stay.
    redacts("release 1.2.3.4", "release [IP]");
    untouched("version 1.2.3.4");
    // Other international layouts.
    for p in [
        "+1-415-555-0132",
        "+1 415 555 0132",
        "+49 (0)30 1234567",
        "+353 1 234 5678",
        "+31 20 123 4567",
        "+46 8 123 456 78",
    ] {
        redacts(&format!("tel {p}."), "tel [PHONE].");
    }
}
