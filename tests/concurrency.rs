//! Many simultaneous requests with one code: exactly one wins. (The seed's read-then-delete let
//! 11 of 30 concurrent pairs both pass.)

mod support;

use support::{Stores, random_mobile, register};

const REQUESTS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_registers_one_user_whatever_the_race() {
    let mut st = Stores::fresh().await;
    let app = st.app().await;
    let mobile = random_mobile();
    st.set_code(&mobile, "987654", 300).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (app, barrier, mobile) = (app.clone(), barrier.clone(), mobile.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                register(&app, &mobile, "987654").await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let wins = answers.iter().filter(|(s, _)| *s == 201).count();
    let expired = answers
        .iter()
        .filter(|(s, c)| *s == 400 && c == "sms_code_expired")
        .count();
    assert_eq!((wins, expired), (1, REQUESTS - 1), "{answers:?}");
    assert_eq!(st.count_items().await, 1);
    assert!(st.item(&mobile).await.is_some());
    assert_eq!(st.code(&mobile).await, None);
}
