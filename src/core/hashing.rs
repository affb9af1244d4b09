//! Password hashing: argon2id with at least the OWASP minimum, stored as a PHC string, and run
//! on the blocking pool so a 10-50 ms hash never stalls the async runtime.
//!
//! The hash's 19 MiB of working memory is allocated (and touched) once, at cold start, and
//! reused: allocating it per hash made every blocking-pool thread's malloc arena keep its own
//! copy (peak RSS grew to 220 MiB over a few hundred requests), and the first request paid the
//! page faults. It is mapped on its own and offered to the kernel for 2 MiB pages
//! (transparent huge pages): committing it then takes 10 huge pages instead of 4,864 small ones,
//! which was most of the init (issue 16; docs/performance.md). Where the kernel has huge pages
//! off, it is the 4,864 faults as before.

use std::sync::{Mutex, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};

use crate::core::domain::Password;

/// Memory cost in KiB, iterations and lanes: OWASP's minimum for argon2id (m=19 MiB, t=2, p=1).
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2 failed: {0}")]
    Argon2(String),
    #[error("hashing task failed: {0}")]
    Task(String),
}

/// Working memories kept for reuse: one per hash that ran at the same time, at most this many.
const KEPT_MEMORIES: usize = 2;
static MEMORIES: Mutex<Vec<Memory>> = Mutex::new(Vec::new());

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None)
        .expect("the argon2 parameters are within the algorithm's bounds")
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// A zeroed working memory, its pages committed now rather than mid-hash.
fn new_memory() -> Memory {
    Memory::new(params().block_count())
}

/// Zeroed blocks in an anonymous mapping of their own, aligned to 2 MiB and marked for
/// transparent huge pages, every page already faulted in.
struct Memory {
    blocks: std::ptr::NonNull<Block>,
    len: usize,
    map: *mut libc::c_void,
    map_len: usize,
}

// SAFETY: `Memory` owns its mapping outright, like a `Box<[Block]>`.
unsafe impl Send for Memory {}

const HUGE_PAGE: usize = 2 << 20;
const PAGE: usize = 4096;

impl Memory {
    fn new(len: usize) -> Self {
        let bytes = len * size_of::<Block>();
        // Room to start on a 2 MiB boundary and end on one: the kernel backs only whole,
        // aligned 2 MiB ranges with a huge page.
        let map_len = bytes.next_multiple_of(HUGE_PAGE) + HUGE_PAGE;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(map != libc::MAP_FAILED, "out of memory for the hash");
        let start = (map as usize).next_multiple_of(HUGE_PAGE);
        let span = bytes.next_multiple_of(HUGE_PAGE);
        // SAFETY: [start, start + span) lies inside the mapping (map_len leaves room for the
        // alignment). Only a hint: an error (no huge pages in this kernel) leaves 4 KiB pages.
        unsafe { libc::madvise(start as *mut libc::c_void, span, libc::MADV_HUGEPAGE) };
        // Fault every page in now: in one call where the kernel can (5.14 and later), else by
        // writing to each page. An anonymous mapping reads as zeros, so writing a zero keeps
        // the contents; with huge pages the first write in each 2 MiB does the work.
        // SAFETY: [start, start + bytes) lies inside the mapping, which is writable.
        let populated =
            unsafe { libc::madvise(start as *mut libc::c_void, bytes, libc::MADV_POPULATE_WRITE) }
                == 0;
        if !populated {
            for offset in (0..bytes).step_by(PAGE) {
                // SAFETY: inside the mapping, which is readable and writable.
                unsafe { std::ptr::write_volatile((start + offset) as *mut u8, 0) };
            }
        }
        Self {
            // SAFETY: start is inside a successful mapping, so not null; 2 MiB alignment
            // satisfies Block's.
            blocks: unsafe { std::ptr::NonNull::new_unchecked(start as *mut Block) },
            len,
            map,
            map_len,
        }
    }
}

impl std::ops::Deref for Memory {
    type Target = [Block];
    fn deref(&self) -> &[Block] {
        // SAFETY: `len` blocks, zero-initialised by the kernel (all-zero is a valid Block),
        // owned by self for as long as the borrow.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Memory {
    fn deref_mut(&mut self) -> &mut [Block] {
        // SAFETY: as in `deref`, borrowed mutably through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.len) }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no borrow of it outlives self.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// Allocates the working memory ahead of the first request, once per process: a second call
/// (from another thread too) returns when the first one's memory is ready.
pub fn prepare() {
    static PREPARED: std::sync::Once = std::sync::Once::new();
    PREPARED.call_once(|| {
        let memory = new_memory();
        MEMORIES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(memory);
    });
}

/// Hashes on the calling thread; use [`hash_off_runtime`] from async code.
pub fn hash(password: &Password) -> Result<String, HashError> {
    let fail = |e: &dyn std::fmt::Display| HashError::Argon2(e.to_string());
    let pool = || MEMORIES.lock().unwrap_or_else(PoisonError::into_inner);
    let mut memory = pool().pop().unwrap_or_else(new_memory);
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        hasher()
            .hash_password_into_with_memory(
                password.expose().as_bytes(),
                salt_bytes,
                out,
                &mut *memory,
            )
            .map_err(|_| argon2::password_hash::Error::Crypto)
    });
    let mut kept = pool();
    if kept.len() < KEPT_MEMORIES {
        kept.push(memory);
    }
    drop(kept);
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params()).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output.map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Hashes on tokio's blocking pool.
pub async fn hash_off_runtime(password: Password) -> Result<String, HashError> {
    let hashed = tokio::task::spawn_blocking(move || hash(&password));
    crate::core::timing::timed(crate::core::timing::Stage::Hash, hashed)
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[test]
    fn hash_is_an_argon2id_phc_string_with_the_deployed_parameters() {
        let mobile = crate::core::domain::Mobile::parse("13812345678").unwrap();
        let password = Password::parse("correct horse", "correct horse", &mobile).unwrap();
        let phc = hash(&password).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(hasher().verify_password(b"correct horse", &parsed).is_ok());
        assert!(hasher().verify_password(b"correct horsE", &parsed).is_err());
        // The next hash reuses the working memory and is just as right.
        let again = hash(&password).unwrap();
        assert_ne!(phc, again, "each hash has its own salt");
        let parsed = PasswordHash::new(&again).unwrap();
        assert!(hasher().verify_password(b"correct horse", &parsed).is_ok());
    }

    #[test]
    fn working_memory_is_zeroed_aligned_and_writable_to_its_last_block() {
        let mut memory = new_memory();
        assert_eq!(memory.len(), params().block_count());
        assert_eq!(memory.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(memory.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)));
        let last = memory.len() - 1;
        memory[last].as_mut()[127] = 7;
        assert_eq!(memory[last].as_ref()[127], 7);
    }
}
