use super::*;
use proptest::prelude::*;

const A: &[u8] = b"0123456789abcdef0123456789abcdef-a";
const B: &[u8] = b"0123456789abcdef0123456789abcdef-b";
const UA: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
const NOW: u64 = 1_796_385_600;

fn keys(secrets: &[&[u8]]) -> Keys {
    Keys::new(secrets).unwrap()
}

fn client(ip: &str) -> Client<'static> {
    Client {
        ip: ip.parse().unwrap(),
        user_agent: UA,
    }
}

fn issue<'a>(c: Client<'a>) -> Issue<'a> {
    Issue {
        zone: "shop",
        return_to: "/cart?x=1",
        client: c,
        now: NOW,
        nonce: 42,
        difficulty: 8,
        wait_secs: 0,
    }
}

fn solve(token: &str, difficulty: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|c| solved(token, c, difficulty))
        .unwrap()
}

#[test]
fn a_challenge_checks_for_its_client_zone_and_path_until_it_expires() {
    let k = keys(&[A]);
    let c = client("192.0.2.7");
    let t = k.challenge(&issue(c));
    assert_eq!(t.len(), 104);
    let checked = k
        .check_challenge(&t, "shop", "/cart?x=1", &c, NOW + 5)
        .unwrap();
    assert_eq!(
        checked,
        Checked {
            nonce: 42,
            issued: NOW,
            expires: NOW + CHALLENGE_TTL_SECS,
            difficulty: 8,
            wait_secs: 0
        }
    );
    let check = |t: &str, zone, path, c: &Client<'_>, now| k.check_challenge(t, zone, path, c, now);
    assert_eq!(
        check(&t, "shop", "/cart?x=1", &c, NOW + CHALLENGE_TTL_SECS + 1),
        Err(Refusal::Expired)
    );
    assert_eq!(
        check(&t, "blog", "/cart?x=1", &c, NOW),
        Err(Refusal::Forged)
    );
    assert_eq!(
        check(&t, "shop", "/cart?x=2", &c, NOW),
        Err(Refusal::Forged)
    );
    assert_eq!(
        check(&t, "shop", "/cart?x=1", &client("192.0.2.8"), NOW),
        Err(Refusal::OtherIp)
    );
    let other_ua = Client {
        user_agent: b"curl/8.5.0",
        ..c
    };
    assert_eq!(
        check(&t, "shop", "/cart?x=1", &other_ua, NOW),
        Err(Refusal::OtherUserAgent)
    );
    assert_eq!(
        check(&t[..100], "shop", "/cart?x=1", &c, NOW),
        Err(Refusal::Malformed)
    );
    assert_eq!(
        check(&t.to_uppercase(), "shop", "/cart?x=1", &c, NOW),
        Err(Refusal::Malformed)
    );
    // Another secret's token.
    let t2 = keys(&[B]).challenge(&issue(c));
    assert_eq!(
        check(&t2, "shop", "/cart?x=1", &c, NOW),
        Err(Refusal::Forged)
    );
}

#[test]
fn ipv6_clients_are_bound_by_their_64_and_mapped_ipv4_as_ipv4() {
    let k = keys(&[A]);
    let c = client("2001:db8:1:2:aaaa::1");
    let t = k.challenge(&issue(c));
    let same_64 = client("2001:db8:1:2:ffff::9");
    assert!(
        k.check_challenge(&t, "shop", "/cart?x=1", &same_64, NOW)
            .is_ok()
    );
    let other_64 = client("2001:db8:1:3::1");
    assert_eq!(
        k.check_challenge(&t, "shop", "/cart?x=1", &other_64, NOW),
        Err(Refusal::OtherIp)
    );
    let v4 = client("192.0.2.7");
    let t = k.challenge(&issue(v4));
    assert!(
        k.check_challenge(&t, "shop", "/cart?x=1", &client("::ffff:192.0.2.7"), NOW)
            .is_ok()
    );
}

#[test]
fn the_proof_of_work_needs_its_leading_zero_bits_and_the_waiting_path_its_time() {
    let k = keys(&[A]);
    let c = client("192.0.2.7");
    let t = k.challenge(&issue(c));
    let checked = k.check_challenge(&t, "shop", "/cart?x=1", &c, NOW).unwrap();
    let counter = solve(&t, 8);
    assert_eq!(checked.accepts(&t, &counter, NOW), Ok(()));
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|c| !solved(&t, c, 8))
        .unwrap();
    assert_eq!(
        checked.accepts(&t, &wrong, NOW),
        Err(Refusal::WrongSolution)
    );
    for bad in ["", "-1", "1e3", " 1", "123456789012345678901", "wait"] {
        assert_eq!(
            checked.accepts(&t, bad, NOW),
            Err(Refusal::WrongSolution),
            "{bad:?}"
        );
    }

    let waiting = k.challenge(&Issue {
        wait_secs: 5,
        ..issue(c)
    });
    let checked = k
        .check_challenge(&waiting, "shop", "/cart?x=1", &c, NOW)
        .unwrap();
    assert_eq!(
        checked.accepts(&waiting, "wait", NOW + 4),
        Err(Refusal::TooEarly)
    );
    assert_eq!(checked.accepts(&waiting, "wait", NOW + 5), Ok(()));
}

#[test]
fn leading_zero_bits_are_counted_across_bytes() {
    assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
    assert_eq!(leading_zero_bits(&[0x80]), 0);
    assert_eq!(leading_zero_bits(&[0, 0]), 16);
}

#[test]
fn a_clearance_is_bound_to_its_client_and_zone_and_a_rotation_keeps_it_valid() {
    let old = keys(&[A]);
    let c = client("198.51.100.20");
    let value = old.clearance("shop", &c, NOW + 1800);
    assert_eq!(value.len(), 68);
    let check = |k: &Keys, v: &str, zone, c: &Client<'_>, now| {
        k.check_clearance(v.as_bytes(), zone, c, now)
    };
    assert_eq!(check(&old, &value, "shop", &c, NOW), Ok(NOW + 1800));
    assert_eq!(
        check(&old, &value, "shop", &c, NOW + 1801),
        Err(Refusal::Expired)
    );
    assert_eq!(check(&old, &value, "blog", &c, NOW), Err(Refusal::Forged));
    assert_eq!(
        check(&old, &value, "shop", &client("198.51.100.21"), NOW),
        Err(Refusal::OtherIp)
    );
    let phone = Client {
        user_agent: b"Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)",
        ..c
    };
    assert_eq!(
        check(&old, &value, "shop", &phone, NOW),
        Err(Refusal::OtherUserAgent)
    );
    // B is the new secret, A rotates out: what A signed still verifies, B signs new ones.
    let rotating = keys(&[B, A]);
    assert_eq!(check(&rotating, &value, "shop", &c, NOW), Ok(NOW + 1800));
    let fresh = rotating.clearance("shop", &c, NOW + 1800);
    assert_eq!(check(&keys(&[B]), &fresh, "shop", &c, NOW), Ok(NOW + 1800));
    // Once A is gone, its clearances are refused.
    assert_eq!(
        check(&keys(&[B]), &value, "shop", &c, NOW),
        Err(Refusal::Forged)
    );
}

#[test]
fn secrets_are_one_or_two_of_at_least_256_bits() {
    assert_eq!(Keys::new(&[]).unwrap_err(), crate::KeyError::None);
    assert_eq!(
        Keys::new(&[A, B, A]).unwrap_err(),
        crate::KeyError::TooMany(3)
    );
    assert_eq!(
        Keys::new(&[A, b"short"]).unwrap_err(),
        crate::KeyError::TooShort(2)
    );
    assert!(!format!("{:?}", keys(&[A])).contains("0123"));
}

proptest! {
    /// A token or clearance with any one bit flipped never verifies.
    #[test]
    fn no_altered_token_verifies(byte in 0usize..52, bit in 0u8..8) {
        let k = keys(&[A]);
        let c = client("192.0.2.7");
        let t = k.challenge(&issue(c));
        let mut raw: [u8; 52] = crate::hex::decode(t.as_bytes()).unwrap();
        raw[byte] ^= 1 << bit;
        let altered = crate::hex::encode(&raw);
        prop_assert!(k.check_challenge(&altered, "shop", "/cart?x=1", &c, NOW).is_err());
        let v = k.clearance("shop", &c, NOW + 60);
        let mut raw: [u8; 34] = crate::hex::decode(v.as_bytes()).unwrap();
        raw[byte % 34] ^= 1 << bit;
        let altered = crate::hex::encode(&raw);
        prop_assert!(k.check_clearance(altered.as_bytes(), "shop", &c, NOW).is_err());
    }
}
