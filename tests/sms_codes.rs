//! The Redis adapter on a real Redis: claims, their end (consumed or released), wrong tries,
//! lapsed leases, and never touching a newer code.

mod support;

use std::time::Duration;

use ihome_register::core::domain::{Mobile, SmsCode};
use ihome_register::core::ports::{Attempt, ClaimId, SmsCodeStore};
use ihome_register::stores::sms_codes::{CodeRules, RedisSmsCodes};
use redis::AsyncCommands;
use secrecy::SecretString;
use support::{StoredCode, Stores, random_mobile};
use uuid::Uuid;

const ONE_MINUTE: CodeRules = CodeRules {
    lease: Duration::from_secs(60),
    attempts: 3,
};

fn store(st: &Stores, rules: CodeRules) -> (RedisSmsCodes, Mobile) {
    let url = SecretString::from(st.redis_url.clone());
    let codes = RedisSmsCodes::new(&url, Duration::from_secs(1), rules).unwrap();
    (codes, Mobile::parse(&random_mobile()).unwrap())
}

fn code(digits: &str) -> SmsCode {
    SmsCode::parse(digits).unwrap()
}

fn id() -> ClaimId {
    uuid::Uuid::now_v7().into()
}

fn stored(digits: &str, wrong: u32, claimed: bool) -> Option<StoredCode> {
    Some(StoredCode {
        digits: digits.into(),
        wrong,
        claimed,
        pending: None,
    })
}

fn remembering(digits: &str, wrong: u32, claimed: bool, user: Uuid) -> Option<StoredCode> {
    Some(StoredCode {
        pending: Some(user.simple().to_string()),
        ..stored(digits, wrong, claimed).unwrap()
    })
}

#[tokio::test]
async fn a_claim_holds_the_code_for_one_request_and_keeps_its_ttl() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st, ONE_MINUTE);
    let (mine, other) = (id(), id());
    let m = mobile.as_str();
    assert_eq!(
        codes.claim(&mobile, &code("123456"), &mine).await.unwrap(),
        Attempt::Missing
    );

    st.set_code(m, "123456", 120).await;
    let right = code("123456");
    assert_eq!(
        codes.claim(&mobile, &right, &mine).await.unwrap(),
        Attempt::Claimed { pending: None }
    );
    assert_eq!(st.stored(m).await, stored("123456", 0, true));
    let pttl = st.pttl(m).await;
    assert!(pttl > 100_000 && pttl <= 120_000, "{pttl}");
    assert_eq!(
        codes.claim(&mobile, &right, &other).await.unwrap(),
        Attempt::InUse,
        "one holder at a time"
    );
    assert_eq!(
        codes.claim(&mobile, &right, &mine).await.unwrap(),
        Attempt::Claimed { pending: None },
        "claiming again with the same id (a resent command) is harmless"
    );
}

#[tokio::test]
async fn only_the_holder_consumes_or_releases_and_a_release_keeps_the_ttl() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st, ONE_MINUTE);
    let (mine, other) = (id(), id());
    let m = mobile.as_str();
    st.set_code(m, "654321", 60).await;
    codes.claim(&mobile, &code("654321"), &mine).await.unwrap();

    assert!(!codes.release(&mobile, &other, None).await.unwrap());
    assert!(!codes.consume(&mobile, &other).await.unwrap());
    assert_eq!(st.stored(m).await, stored("654321", 0, true));

    assert!(codes.release(&mobile, &mine, None).await.unwrap());
    assert_eq!(st.code(m).await.as_deref(), Some("654321"));
    let pttl = st.pttl(m).await;
    assert!(pttl > 0 && pttl <= 60_000, "{pttl}");
    assert_eq!(
        codes.claim(&mobile, &code("654321"), &other).await.unwrap(),
        Attempt::Claimed { pending: None },
        "a released code serves the next request"
    );
    assert!(codes.consume(&mobile, &other).await.unwrap());
    assert_eq!(st.code(m).await, None);
    assert!(!codes.consume(&mobile, &other).await.unwrap());
}

#[tokio::test]
async fn a_newer_code_is_never_touched_by_the_end_of_an_older_claim() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st, ONE_MINUTE);
    let mine = id();
    let m = mobile.as_str();
    st.set_code(m, "111111", 60).await;
    codes.claim(&mobile, &code("111111"), &mine).await.unwrap();
    st.set_code(m, "222222", 300).await;

    assert!(!codes.release(&mobile, &mine, None).await.unwrap());
    assert!(!codes.consume(&mobile, &mine).await.unwrap());
    assert_eq!(st.code(m).await.as_deref(), Some("222222"));
    assert!(
        st.pttl(m).await > 60_000,
        "the newer code keeps its own TTL"
    );
}

#[tokio::test]
async fn wrong_tries_count_against_the_code_and_the_last_one_deletes_it() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st, ONE_MINUTE);
    let m = mobile.as_str();
    st.set_code(m, "135790", 90).await;
    let wrong = code("135791");
    for tries in 1..=2 {
        assert_eq!(
            codes.claim(&mobile, &wrong, &id()).await.unwrap(),
            Attempt::Wrong { burnt: false }
        );
        assert_eq!(st.stored(m).await, stored("135790", tries, false));
        assert!(st.pttl(m).await > 80_000, "a wrong try keeps the TTL");
    }
    assert_eq!(
        codes.claim(&mobile, &wrong, &id()).await.unwrap(),
        Attempt::Wrong { burnt: true }
    );
    assert_eq!(st.code(m).await, None);

    st.set_code(m, "135790", 90).await;
    assert_eq!(
        codes.claim(&mobile, &wrong, &id()).await.unwrap(),
        Attempt::Wrong { burnt: false }
    );
    assert_eq!(
        st.stored(m).await,
        stored("135790", 1, false),
        "a new code from the issuer starts its own count"
    );
    assert_eq!(
        codes.claim(&mobile, &code("135790"), &id()).await.unwrap(),
        Attempt::Claimed { pending: None },
        "a code not yet burnt still works"
    );
}

#[tokio::test]
async fn with_one_try_a_wrong_code_deletes_it_as_the_seed_did() {
    let mut st = Stores::fresh().await;
    let rules = CodeRules {
        attempts: 1,
        ..ONE_MINUTE
    };
    let (codes, mobile) = store(&st, rules);
    st.set_code(mobile.as_str(), "246802", 60).await;
    assert_eq!(
        codes.claim(&mobile, &code("246803"), &id()).await.unwrap(),
        Attempt::Wrong { burnt: true }
    );
    assert_eq!(st.code(mobile.as_str()).await, None);
}

#[tokio::test]
async fn a_claim_whose_lease_ran_out_is_taken_over() {
    let mut st = Stores::fresh().await;
    // A zero lease has run out by the time anyone else looks, with no clock to wait on.
    let rules = CodeRules {
        lease: Duration::ZERO,
        ..ONE_MINUTE
    };
    let (codes, mobile) = store(&st, rules);
    let (lapsed, next) = (id(), id());
    let m = mobile.as_str();
    st.set_code(m, "975310", 60).await;
    let right = code("975310");
    assert_eq!(
        codes.claim(&mobile, &right, &lapsed).await.unwrap(),
        Attempt::Claimed { pending: None }
    );
    assert_eq!(
        codes.claim(&mobile, &right, &next).await.unwrap(),
        Attempt::Claimed { pending: None }
    );
    assert!(
        !codes.consume(&mobile, &lapsed).await.unwrap(),
        "the lapsed holder lost it"
    );
    assert!(codes.consume(&mobile, &next).await.unwrap());
    assert_eq!(st.code(m).await, None);
}

#[tokio::test]
async fn a_release_after_an_unknown_write_hands_its_user_id_to_the_next_right_code_only() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st, ONE_MINUTE);
    let m = mobile.as_str();
    let (first, second, third) = (id(), id(), id());
    let user = Uuid::now_v7();
    st.set_code(m, "314159", 120).await;
    let right = code("314159");
    assert_eq!(
        codes.claim(&mobile, &right, &first).await.unwrap(),
        Attempt::Claimed { pending: None }
    );
    assert!(
        !codes.release(&mobile, &second, Some(user)).await.unwrap(),
        "only the holder releases, and so only it can leave an id"
    );
    assert_eq!(st.stored(m).await, stored("314159", 0, true));
    assert!(codes.release(&mobile, &first, Some(user)).await.unwrap());
    assert_eq!(st.stored(m).await, remembering("314159", 0, false, user));
    let pttl = st.pttl(m).await;
    assert!(pttl > 100_000 && pttl <= 120_000, "the TTL is kept: {pttl}");

    // A wrong code counts, keeps the id, and is never told it.
    assert_eq!(
        codes
            .claim(&mobile, &code("271828"), &second)
            .await
            .unwrap(),
        Attempt::Wrong { burnt: false }
    );
    assert_eq!(st.stored(m).await, remembering("314159", 1, false, user));

    // The right code gets it back, again if the claim is resent, and no one else meanwhile.
    let handed = Attempt::Claimed {
        pending: Some(user),
    };
    assert_eq!(codes.claim(&mobile, &right, &second).await.unwrap(), handed);
    assert_eq!(codes.claim(&mobile, &right, &second).await.unwrap(), handed);
    assert_eq!(
        codes.claim(&mobile, &right, &third).await.unwrap(),
        Attempt::InUse
    );
    assert_eq!(st.stored(m).await, remembering("314159", 1, true, user));

    // A release with nothing to remember (e.g. the hash failed) keeps the id.
    assert!(codes.release(&mobile, &second, None).await.unwrap());
    assert_eq!(st.stored(m).await, remembering("314159", 1, false, user));
    assert_eq!(codes.claim(&mobile, &right, &third).await.unwrap(), handed);
    assert!(codes.consume(&mobile, &third).await.unwrap());
    assert_eq!(st.stored(m).await, None, "spent, and the id with it");
}

#[tokio::test]
async fn a_new_code_from_the_issuer_forgets_the_pending_id() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st, ONE_MINUTE);
    let m = mobile.as_str();
    let claim = id();
    st.set_code(m, "161803", 120).await;
    codes.claim(&mobile, &code("161803"), &claim).await.unwrap();
    codes
        .release(&mobile, &claim, Some(Uuid::now_v7()))
        .await
        .unwrap();
    assert!(st.stored(m).await.unwrap().pending.is_some());

    st.set_code(m, "577215", 300).await;
    assert_eq!(
        codes.claim(&mobile, &code("577215"), &id()).await.unwrap(),
        Attempt::Claimed { pending: None }
    );
    assert_eq!(st.stored(m).await, stored("577215", 0, true));
}

#[tokio::test]
async fn records_in_the_previous_layout_are_read_and_kept_in_it() {
    // What the version before pending ids left in Redis: four fields. Instances of both
    // versions read each other's records as long as no id is pending.
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st, ONE_MINUTE);
    let m = mobile.as_str();
    let key = support::key(m);
    let holder = id();
    let _: () = st.redis.set_ex(&key, "141421|2||0", 120).await.unwrap();
    assert_eq!(
        codes
            .claim(&mobile, &code("141421"), &holder)
            .await
            .unwrap(),
        Attempt::Claimed { pending: None }
    );
    assert!(codes.release(&mobile, &holder, None).await.unwrap());
    let raw: String = st.redis.get(&key).await.unwrap();
    assert_eq!(
        raw, "141421|2||0",
        "no pending id: the previous layout exactly"
    );

    let far = "99999999999999";
    let theirs = format!("141421|2|{}|{far}", "ab".repeat(16));
    let _: () = st.redis.set_ex(&key, &theirs, 120).await.unwrap();
    assert_eq!(
        codes.claim(&mobile, &code("141421"), &id()).await.unwrap(),
        Attempt::InUse,
        "a claim made by the previous version holds"
    );
    assert_eq!(
        codes.claim(&mobile, &code("000000"), &id()).await.unwrap(),
        Attempt::Wrong { burnt: true },
        "its wrong-try count carries on (3 allowed here)"
    );
}
