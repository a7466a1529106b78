//! Peak stack use by stack painting: the free stack is filled with a pattern at
//! boot, and the lowest overwritten word at the end marks the high-water mark.
//!
//! This is the firmware's only `unsafe`: volatile reads and writes of the free
//! stack region between the end of static RAM (`_stack_end`, from cortex-m-rt's
//! linker script) and the current stack pointer, which no live data occupies.

const PATTERN: u32 = 0x5EA5_C0DE;
/// Words left unpainted just below the stack pointer, for the painter's own calls.
const MARGIN_BYTES: usize = 64;

extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

fn region() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken, never their values.
    (
        core::ptr::addr_of!(_stack_end) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}

/// Bytes in the stack region (from the end of static RAM to the top of RAM).
pub fn region_bytes() -> usize {
    let (bottom, top) = region();
    top - bottom
}

/// Fills the free stack below the caller with the pattern.
#[inline(never)]
pub fn paint() {
    let (bottom, _) = region();
    let limit = cortex_m::register::msp::read() as usize - MARGIN_BYTES;
    let mut address = bottom;
    while address < limit {
        // SAFETY: `address` is word-aligned (cortex-m-rt aligns `_stack_end` to 4)
        // and lies between the end of static RAM and the stack pointer, in free stack.
        unsafe { core::ptr::write_volatile(address as *mut u32, PATTERN) };
        address += 4;
    }
}

/// The deepest the stack has reached since [`paint`], in bytes from the top of RAM.
pub fn peak_bytes() -> usize {
    let (bottom, top) = region();
    let mut address = bottom;
    while address < top {
        // SAFETY: word-aligned, inside RAM between the end of static data and the top.
        if unsafe { core::ptr::read_volatile(address as *const u32) } != PATTERN {
            break;
        }
        address += 4;
    }
    top - address
}
