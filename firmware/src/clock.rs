//! A 64-bit tick counter from SysTick on the core clock.
//!
//! SysTick is a 24-bit down-counter; its wrap exception extends it. Under QEMU
//! `-icount shift=0` one instruction is 1 ns of virtual time, so on mps2-an386's
//! 25 MHz core clock one tick is 40 instructions, repeatably.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;

/// The core clock SysTick counts on mps2-an386 (QEMU's model of the board).
pub const CORE_CLOCK_HZ: u32 = 25_000_000;

const RELOAD: u32 = 0x00FF_FFFF;
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Starts SysTick counting core-clock cycles from zero, with its wrap interrupt.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Ticks since [`start`].
pub fn now() -> u64 {
    loop {
        let wraps = WRAPS.load(Ordering::Relaxed);
        let current = SYST::get_current();
        // A wrap between the two loads makes `current` belong to either count: retry.
        if WRAPS.load(Ordering::Relaxed) == wraps {
            return u64::from(wraps) * u64::from(RELOAD + 1) + u64::from(RELOAD - current);
        }
    }
}
