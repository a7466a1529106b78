//! Parses the firmware's line protocol (see the module docs of `firmware`) into
//! the scores, generations and stack use it printed.

use lstm_edge_runtime::numeric::{Int, Numeric};

use super::{INSTRUCTIONS_PER_SECOND, PROTOCOL_VERSION};
use crate::blob::NumericPath;

/// A review's score as the firmware printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    pub index: usize,
    /// The sigmoid output as the runtime returns it: the integer path's
    /// fixed-point value, or the f32 path's `f32` bits.
    pub value: i64,
    /// SysTick ticks spent scoring it.
    pub ticks: u64,
    /// Cell steps it took (padding included).
    pub steps: u32,
}

/// One generation run as the firmware printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub temperature_milli: u32,
    pub seed: u64,
    /// SysTick ticks spent feeding the prompt.
    pub prompt_ticks: u64,
    /// SysTick ticks spent generating `text`.
    pub ticks: u64,
    pub text: Vec<u8>,
}

/// What opening the model cost at boot, in SysTick ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenTicks {
    /// `Model::from_bytes`: the CRC-32 and the structure checks.
    pub check: u64,
    /// `Network::new`: the tokenizer's checks (a vocabulary's order).
    pub network: u64,
}

/// Everything a successful firmware run printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareOutput {
    /// SysTick frequency: with `-icount shift=0`, one tick is
    /// `INSTRUCTIONS_PER_SECOND / clock_hz` instructions.
    pub clock_hz: u64,
    /// The `model` line, after the keyword.
    pub model: String,
    /// The numeric path the image ran (the `model` line's `path=`).
    pub path: NumericPath,
    pub open: OpenTicks,
    pub scores: Vec<Score>,
    pub generations: Vec<Generation>,
    /// Peak stack use found by stack painting, and the painted region's size.
    pub stack_peak_bytes: u64,
    pub stack_region_bytes: u64,
    /// The whole console output.
    pub console: String,
}

impl FirmwareOutput {
    /// Instructions per SysTick tick under `-icount shift=0`.
    pub fn instructions_per_tick(&self) -> u64 {
        INSTRUCTIONS_PER_SECOND / self.clock_hz.max(1)
    }

    /// What opening the model took at boot, in instructions: the blob check's
    /// and the network's.
    pub fn open_instructions(&self) -> (u64, u64) {
        let per_tick = self.instructions_per_tick();
        (self.open.check * per_tick, self.open.network * per_tick)
    }

    /// A score as `lstm-edge score --json` gives `raw`: the Q30 value, or the f32.
    pub fn raw_text(&self, score: &Score) -> String {
        match (self.path, u32::try_from(score.value)) {
            (NumericPath::F32, Ok(bits)) => format!("{:?}", f32::from_bits(bits)),
            _ => score.value.to_string(),
        }
    }

    /// A score as a probability, decoded for the path the image ran, or `None`
    /// if the printed value is not one.
    pub fn probability(&self, score: &Score) -> Option<f64> {
        let raw = u32::try_from(score.value).ok()?;
        match self.path {
            NumericPath::Int => Some(<Int as Numeric>::prob_to_f64(raw)),
            NumericPath::F32 => {
                let p = f64::from(f32::from_bits(raw));
                (0.0..=1.0).contains(&p).then_some(p)
            }
        }
    }
}

/// The `path=` field of a `model` line.
fn model_path(fields: &[&str]) -> Option<NumericPath> {
    match fields
        .iter()
        .find_map(|field| field.strip_prefix("path="))?
    {
        "int" => Some(NumericPath::Int),
        "f32" => Some(NumericPath::F32),
        _ => None,
    }
}

/// Parses the firmware's line protocol (see the module docs).
pub fn parse_output(console: &str) -> Result<FirmwareOutput, String> {
    let mut version = None;
    let mut clock_hz = None;
    let mut model = None;
    let mut open = None;
    let mut scores = Vec::new();
    let mut generations = Vec::new();
    let mut stack = None;
    let mut ended = false;
    for (number, line) in console.lines().enumerate() {
        let number = number + 1;
        // Fields are split on single spaces: a generation that drew no printable
        // char has an empty text field between two spaces.
        let mut fields = line.trim_end().split(' ');
        let Some(keyword) = fields.next().filter(|keyword| !keyword.is_empty()) else {
            continue;
        };
        let fields: Vec<&str> = fields.collect();
        let bad = |what: &str| format!("console line {number} `{line}`: {what}");
        let int = |index: usize, what: &str| -> Result<u64, String> {
            fields
                .get(index)
                .and_then(|field| field.parse().ok())
                .ok_or_else(|| bad(&format!("field {} ({what}) is not a number", index + 1)))
        };
        match keyword {
            "lstm-edge-firmware" => version = Some(int(0, "protocol version")?),
            "clock" => clock_hz = Some(int(0, "clock hz")?),
            "model" => {
                let path =
                    model_path(&fields).ok_or_else(|| bad("no `path=int` or `path=f32` field"))?;
                model = Some((fields.join(" "), path));
            }
            "open" => {
                open = Some(OpenTicks {
                    check: int(0, "check ticks")?,
                    network: int(1, "network ticks")?,
                })
            }
            "score" => {
                let value = fields
                    .get(1)
                    .and_then(|field| field.parse::<i64>().ok())
                    .ok_or_else(|| bad("field 2 (score) is not an integer"))?;
                scores.push(Score {
                    index: int(0, "review index")? as usize,
                    value,
                    ticks: int(2, "ticks")?,
                    steps: int(3, "steps")? as u32,
                });
            }
            "gen" => {
                let hex = fields.get(2).copied().unwrap_or("");
                let text = decode_hex(hex).ok_or_else(|| bad("field 3 (text) is not hex"))?;
                generations.push(Generation {
                    temperature_milli: int(0, "temperature")? as u32,
                    seed: int(1, "seed")?,
                    prompt_ticks: int(3, "prompt ticks")?,
                    ticks: int(4, "generation ticks")?,
                    text,
                });
            }
            "stack" => stack = Some((int(0, "peak bytes")?, int(1, "region bytes")?)),
            "end" => ended = true,
            "error" => return Err(bad("the firmware reported an error")),
            _ => {}
        }
    }
    match version {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "firmware speaks protocol {v}, this tool reads {PROTOCOL_VERSION}; rebuild it"
            ))
        }
        None => return Err("no `lstm-edge-firmware` banner in the output".to_owned()),
    }
    if !ended {
        return Err("the output stops before its `end` line".to_owned());
    }
    let (stack_peak_bytes, stack_region_bytes) =
        stack.ok_or_else(|| "no `stack` line in the output".to_owned())?;
    let (model, path) = model.ok_or_else(|| "no `model` line in the output".to_owned())?;
    Ok(FirmwareOutput {
        clock_hz: clock_hz.ok_or_else(|| "no `clock` line in the output".to_owned())?,
        model,
        path,
        open: open.ok_or_else(|| "no `open` line in the output".to_owned())?,
        scores,
        generations,
        stack_peak_bytes,
        stack_region_bytes,
        console: console.to_owned(),
    })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "lstm-edge-firmware 3\nclock 25000000\n\
        model lstm hidden=8 input=chars:30 head=last output=softmax:30 path=int blob=1234\n\
        open 4567 89\n\
        score 0 536870912 120 12\n\
        gen 500 7 68690a 10 99\n\
        stack 612 4190000\nend\n";

    #[test]
    fn parses_every_record() {
        let out = parse_output(GOOD).unwrap();
        assert_eq!(out.clock_hz, 25_000_000);
        assert_eq!(out.instructions_per_tick(), 40);
        assert!(out.model.starts_with("lstm hidden=8"));
        assert_eq!(
            out.scores,
            vec![Score {
                index: 0,
                value: 536870912,
                ticks: 120,
                steps: 12
            }]
        );
        assert_eq!(out.path, NumericPath::Int);
        assert_eq!(
            out.open,
            OpenTicks {
                check: 4567,
                network: 89
            }
        );
        assert_eq!(out.probability(&out.scores[0]), Some(0.5));
        let negative = Score {
            value: -1,
            ..out.scores[0].clone()
        };
        assert_eq!(out.probability(&negative), None);
        assert_eq!(out.generations.len(), 1);
        assert_eq!(out.generations[0].text, b"hi\n");
        assert_eq!(out.generations[0].temperature_milli, 500);
        assert_eq!(out.generations[0].seed, 7);
        assert_eq!(
            (out.stack_peak_bytes, out.stack_region_bytes),
            (612, 4190000)
        );
    }

    #[test]
    fn a_generation_that_printed_no_char_parses_as_empty_text() {
        // Every draw was UNK or PAD: the text field between the two spaces is empty.
        let out = parse_output(&GOOD.replace("gen 500 7 68690a ", "gen 500 7  ")).unwrap();
        assert_eq!(out.generations[0].text, b"");
        assert_eq!(out.generations[0].seed, 7);
    }

    #[test]
    fn rejects_truncated_or_garbled_output() {
        let cut = GOOD.replace("end\n", "");
        assert!(parse_output(&cut).unwrap_err().contains("`end`"));
        let odd_hex = GOOD.replace("68690a", "6869a");
        assert!(parse_output(&odd_hex).unwrap_err().contains("not hex"));
        let word = GOOD.replace("536870912", "high");
        assert!(parse_output(&word).unwrap_err().contains("not an integer"));
        let newer = GOOD.replace("lstm-edge-firmware 3", "lstm-edge-firmware 4");
        assert!(parse_output(&newer).unwrap_err().contains("protocol 4"));
        let older = GOOD.replace("lstm-edge-firmware 3", "lstm-edge-firmware 2");
        assert!(parse_output(&older).unwrap_err().contains("protocol 2"));
        let unopened = GOOD.replace("open 4567 89\n", "");
        assert!(parse_output(&unopened).unwrap_err().contains("`open`"));
        let half_open = GOOD.replace("open 4567 89", "open 4567");
        assert!(parse_output(&half_open)
            .unwrap_err()
            .contains("network ticks"));
        let pathless = GOOD.replace(" path=int", "");
        assert!(parse_output(&pathless).unwrap_err().contains("path="));
    }

    #[test]
    fn an_f32_image_prints_its_score_as_bits() {
        let half = 0.75f32.to_bits().to_string();
        let f32_run = GOOD
            .replace("path=int", "path=f32")
            .replace("536870912", &half);
        let out = parse_output(&f32_run).unwrap();
        assert_eq!(out.path, NumericPath::F32);
        assert_eq!(out.probability(&out.scores[0]), Some(0.75));
        assert_eq!(out.raw_text(&out.scores[0]), "0.75");
        let nan = f32::NAN.to_bits().to_string();
        let out = parse_output(&f32_run.replace(&half, &nan)).unwrap();
        assert_eq!(out.probability(&out.scores[0]), None);
    }

    #[test]
    fn decode_hex_reads_pairs_and_refuses_bad_digits() {
        assert_eq!(decode_hex("00ff7a").unwrap(), vec![0, 255, 0x7a]);
        assert!(decode_hex("0g").is_none());
        assert_eq!(decode_hex("").unwrap(), Vec::<u8>::new());
    }
}
