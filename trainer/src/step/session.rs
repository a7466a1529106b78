//! The sessions that run a model's training and evaluation graphs, with the parameters
//! and optimizer state kept as ONNX Runtime values between steps.

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::Output;
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session, SessionInputValue};
use ort::value::{DynTensor, DynTensorValueType, DynValue, Tensor as OrtTensor};

use crate::autodiff::Backend;
use crate::bptt::Recurrence;
use crate::model::{Params, Tensor};
use crate::optim::OptimizerConfig;
use crate::ort_env::{self, Device};

use super::{build_eval_graph, build_train_graph, names, NetSpec};

/// Targets of one batch, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum BatchTargets<'a> {
    Binary(&'a [f32]),
    Class(&'a [i64]),
}

/// One batch: `ids` is `[rows, steps]` row-major.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    pub ids: &'a [i64],
    pub targets: BatchTargets<'a>,
    /// Inverted-dropout mask of [`NetSpec::mask_shape`]`(rows)`; training only.
    pub mask: Option<&'a [f32]>,
}

impl Batch<'_> {
    pub fn rows(&self) -> usize {
        match self.targets {
            BatchTargets::Binary(y) => y.len(),
            BatchTargets::Class(y) => y.len(),
        }
    }
}

/// What one batch gave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchStats {
    /// Mean loss over the batch's rows.
    pub loss: f32,
    /// Correct predictions among the rows.
    pub correct: f32,
    pub rows: usize,
    /// A training step whose gradient was not finite (NaN, inf, or a norm past f32's
    /// range): its update was dropped and the parameters and optimizer state are as
    /// they were before it. Always false for an evaluation.
    pub skipped: bool,
}

/// The training and evaluation sessions of one model, holding the parameters
/// and optimizer state as ONNX Runtime values between steps: each step's
/// outputs are the next step's inputs, never copied through Rust vectors. The
/// step runs through an [`IoBinding`] whose parameter and state outputs are
/// allocated in the device's memory, so on CUDA they stay on the GPU and only
/// the batch (ids, targets, mask) and the three scalars (loss, correct count,
/// gradient norm) cross to and from the host.
pub struct TrainSession {
    spec: NetSpec,
    dropout: bool,
    train: Session,
    eval: Session,
    binding: IoBinding,
    /// Where the step allocates its parameter and state outputs.
    device_memory: MemoryInfo<'static>,
    param_shapes: Vec<(&'static str, Vec<usize>)>,
    state_shapes: Vec<(String, Vec<usize>)>,
    params: Vec<DynTensor>,
    state: Vec<DynTensor>,
    /// The factor on the learning rate that the next steps use, a scalar tensor made
    /// once per epoch rather than every step.
    lr_scale: DynValue,
}

fn to_ort(dims: &[usize], data: &[f32]) -> Result<DynValue> {
    Ok(OrtTensor::from_array((dims.to_vec(), data.to_vec()))?.into_dyn())
}

/// A tensor in `device`'s memory, holding `data`.
fn to_device(dims: &[usize], data: &[f32], device: Device) -> Result<DynTensor> {
    let host = OrtTensor::from_array((dims.to_vec(), data.to_vec()))?.upcast();
    Ok(match device {
        Device::Cpu => host,
        Device::Cuda { device_id } => host
            .to(AllocationDevice::CUDA, device_id)
            .with_context(|| format!("copying a {dims:?} tensor to cuda:{device_id}"))?,
    })
}

/// The memory of `device`.
fn device_memory(device: Device) -> Result<MemoryInfo<'static>> {
    Ok(match device {
        Device::Cpu => MemoryInfo::default(),
        Device::Cuda { device_id } => MemoryInfo::new(
            AllocationDevice::CUDA,
            device_id,
            AllocatorType::Device,
            MemoryType::Default,
        )?,
    })
}

/// A host copy of a tensor that may live in device memory.
fn from_ort(value: &DynTensor, dims: &[usize]) -> Result<Tensor> {
    let data = if value.memory_info().is_cpu_accessible() {
        value.try_extract_tensor::<f32>()?.1.to_vec()
    } else {
        let host = value.to(AllocationDevice::CPU, 0)?;
        host.try_extract_tensor::<f32>()?.1.to_vec()
    };
    Tensor::new(dims, data)
}

impl TrainSession {
    /// Builds both graphs and loads `params` (and `optimizer_state`, if resuming;
    /// zeros otherwise). `threads` is the intra-op thread count (0: ORT decides).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: NetSpec,
        dropout: bool,
        optimizer: &OptimizerConfig,
        params: &Params,
        optimizer_state: Option<&[Tensor]>,
        device: Device,
        threads: usize,
        how: Recurrence,
    ) -> Result<Self> {
        // Loads the library before the first tensor is made.
        ort_env::init()?;
        let param_shapes = spec.param_shapes();
        let state_shapes = optimizer.state_shapes(&spec.trained_shapes());
        let named = params.named();
        ensure!(
            named.len() == param_shapes.len(),
            "the parameters hold {} tensors but the model needs {} (embedding present for word input only)",
            named.len(),
            param_shapes.len()
        );
        // The sessions come first: registering the device's provider is where a
        // missing GPU build or driver gives its clearest error.
        let backend = Backend::of(device, threads);
        let train_bytes = build_train_graph(&spec, optimizer, dropout, how, backend);
        let train = ort_env::session_from_bytes(&train_bytes, device, threads)
            .context("loading the training graph")?;
        let eval_bytes = build_eval_graph(&spec, how, backend);
        let eval = ort_env::session_from_bytes(&eval_bytes, device, threads)
            .context("loading the evaluation graph")?;
        let mut param_values = Vec::new();
        for ((name, tensor), (want_name, dims)) in named.iter().zip(&param_shapes) {
            ensure!(
                name == want_name && &tensor.dims == dims,
                "parameter {name} has shape {:?}, the model needs {want_name} {dims:?}",
                tensor.dims
            );
            param_values.push(to_device(dims, &tensor.data, device)?);
        }
        let mut state_values = Vec::new();
        match optimizer_state {
            Some(state) => {
                ensure!(
                    state.len() == state_shapes.len(),
                    "the saved optimizer state has {} tensors, {:?} over this run's trainable \
                     tensors needs {}: a frozen embedding trains one fewer, so resume with the \
                     first run's --freeze-embedding setting",
                    state.len(),
                    optimizer.rule,
                    state_shapes.len()
                );
                for (t, (name, dims)) in state.iter().zip(&state_shapes) {
                    ensure!(
                        &t.dims == dims,
                        "optimizer state {name} has shape {:?}, expected {dims:?}",
                        t.dims
                    );
                    state_values.push(to_device(dims, &t.data, device)?);
                }
            }
            None => {
                for (_, dims) in &state_shapes {
                    let zeros = vec![0.0; dims.iter().product()];
                    state_values.push(to_device(dims, &zeros, device)?);
                }
            }
        }
        let binding = train.create_binding()?;
        Ok(TrainSession {
            spec,
            dropout,
            train,
            eval,
            binding,
            device_memory: device_memory(device)?,
            param_shapes,
            state_shapes,
            params: param_values,
            state: state_values,
            lr_scale: to_ort(&[], &[1.0])?,
        })
    }

    pub fn spec(&self) -> &NetSpec {
        &self.spec
    }

    /// Sets the factor on the optimizer's learning rate for the following steps
    /// (see [`OptimizerConfig::lr_scale`]).
    pub fn set_lr_scale(&mut self, scale: f32) -> Result<()> {
        self.lr_scale = to_ort(&[], &[scale])?;
        Ok(())
    }

    fn batch_inputs(&self, batch: &Batch) -> Result<Vec<(&'static str, DynValue)>> {
        let rows = batch.rows();
        ensure!(
            batch.ids.len() == rows * self.spec.steps,
            "batch ids hold {} values, expected {rows} rows x {} steps",
            batch.ids.len(),
            self.spec.steps
        );
        let ids = OrtTensor::from_array(([rows, self.spec.steps], batch.ids.to_vec()))?;
        let targets = match (batch.targets, self.spec.output) {
            (BatchTargets::Binary(y), Output::Sigmoid) => {
                OrtTensor::from_array(([rows], y.to_vec()))?.into_dyn()
            }
            (BatchTargets::Class(y), Output::Softmax { .. }) => {
                OrtTensor::from_array(([rows], y.to_vec()))?.into_dyn()
            }
            _ => bail!(
                "batch targets do not match the model's output ({:?})",
                self.spec.output
            ),
        };
        Ok(vec![
            (names::IDS, ids.into_dyn()),
            (names::TARGETS, targets),
        ])
    }

    fn stats(out: &ort::session::SessionOutputs, rows: usize) -> Result<BatchStats> {
        let loss = out[names::LOSS].try_extract_tensor::<f32>()?.1[0];
        let correct = out[names::CORRECT].try_extract_tensor::<f32>()?.1[0];
        Ok(BatchStats {
            loss,
            correct,
            rows,
            skipped: false,
        })
    }

    /// One optimizer step on `batch`. A non-finite loss is an error and leaves
    /// the parameters as they were. A finite loss with a non-finite gradient is
    /// not: the update is dropped (see [`BatchStats::skipped`]).
    pub fn step(&mut self, batch: &Batch) -> Result<BatchStats> {
        let mut feed = self.batch_inputs(batch)?;
        match (self.dropout, batch.mask) {
            (true, Some(mask)) => {
                let dims = self.spec.mask_shape(batch.rows());
                ensure!(
                    mask.len() == dims.iter().product::<usize>(),
                    "dropout mask holds {} values, expected {dims:?}",
                    mask.len()
                );
                feed.push((names::MASK, to_ort(&dims, mask)?));
            }
            (true, None) => bail!("this model trains with dropout: the batch needs a mask"),
            (false, Some(_)) => bail!("this model has no dropout, but the batch has a mask"),
            (false, None) => {}
        }
        let host = MemoryInfo::default();
        // Rebound every step: a bound output that is already allocated would be
        // written in place, over this step's inputs.
        let binding = &mut self.binding;
        binding.clear();
        for (name, value) in &feed {
            binding.bind_input(*name, value)?;
        }
        binding.bind_input(names::LR_SCALE, &self.lr_scale)?;
        for ((name, _), value) in self.param_shapes.iter().zip(&self.params) {
            binding.bind_input(*name, value)?;
        }
        for ((name, _), value) in self.state_shapes.iter().zip(&self.state) {
            binding.bind_input(name.as_str(), value)?;
        }
        for (index, (name, _)) in self.param_shapes.iter().enumerate() {
            if self.spec.is_trained(index) {
                binding.bind_output_to_device(names::next(name), &self.device_memory)?;
            }
        }
        for (name, _) in &self.state_shapes {
            binding.bind_output_to_device(names::next(name), &self.device_memory)?;
        }
        binding.bind_output_to_device(names::LOSS, &host)?;
        binding.bind_output_to_device(names::CORRECT, &host)?;
        binding.bind_output_to_device(names::GRAD_NORM, &host)?;
        let mut out = self
            .train
            .run_binding(&self.binding)
            .context("running the training step")?;
        let mut stats = Self::stats(&out, batch.rows())?;
        if !stats.loss.is_finite() {
            bail!("the training loss became {} (not finite)", stats.loss);
        }
        let grad_norm = out[names::GRAD_NORM].try_extract_tensor::<f32>()?.1[0];
        stats.skipped = !grad_norm.is_finite();
        let next = if stats.skipped {
            None
        } else {
            let mut take = |name: &str| -> Result<DynTensor> {
                let value = out
                    .remove(names::next(name))
                    .with_context(|| format!("the training graph did not return {name}"))?;
                Ok(value.downcast::<DynTensorValueType>()?)
            };
            let updated = self
                .param_shapes
                .iter()
                .enumerate()
                .map(|(index, (name, _))| {
                    self.spec.is_trained(index).then(|| take(name)).transpose()
                })
                .collect::<Result<Vec<_>>>()?;
            let state = self
                .state_shapes
                .iter()
                .map(|(name, _)| take(name))
                .collect::<Result<Vec<_>>>()?;
            Some((updated, state))
        };
        drop(out);
        // The binding would otherwise keep last step's tensors alive beside the new ones.
        self.binding.clear();
        if let Some((updated, state)) = next {
            for (param, next) in self.params.iter_mut().zip(updated) {
                if let Some(next) = next {
                    *param = next;
                }
            }
            self.state = state;
        }
        Ok(stats)
    }

    /// Loss and correct count on `batch` with the current parameters, no dropout.
    pub fn evaluate(&mut self, batch: &Batch) -> Result<BatchStats> {
        let mut inputs: Vec<(String, SessionInputValue)> = self
            .batch_inputs(batch)?
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.into()))
            .collect();
        for ((name, _), v) in self.param_shapes.iter().zip(&self.params) {
            inputs.push((name.to_string(), v.into()));
        }
        let out = self
            .eval
            .run(inputs)
            .context("running the evaluation graph")?;
        Self::stats(&out, batch.rows())
    }

    /// A copy of the current parameters.
    pub fn params(&self) -> Result<Params> {
        let tensors = self
            .param_shapes
            .iter()
            .zip(&self.params)
            .map(|((_, dims), v)| from_ort(v, dims))
            .collect::<Result<Vec<_>>>()?;
        self.spec.params_from_ordered(tensors)
    }

    /// A copy of the optimizer state, in [`OptimizerConfig::state_shapes`] order.
    pub fn optimizer_state(&self) -> Result<Vec<Tensor>> {
        self.state_shapes
            .iter()
            .zip(&self.state)
            .map(|((_, dims), v)| from_ort(v, dims))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::InputKind;
    use lstm_edge_runtime::format::{Cell, Head};

    /// The evaluation loss of one sigmoid-output row `ids` with `pad` set.
    fn eval_loss(head: Head, steps: usize, ids: &[i64], pad: u16) -> f32 {
        let batch = Batch {
            ids,
            targets: BatchTargets::Binary(&[1.0]),
            mask: None,
        };
        small_session(head, steps, pad, 1.0)
            .evaluate(&batch)
            .unwrap()
            .loss
    }

    /// A session of a tiny LSTM with random weights, its head's weights times `head_scale`.
    fn small_session(head: Head, steps: usize, pad: u16, head_scale: f32) -> TrainSession {
        let spec = NetSpec {
            cell: Cell::Lstm,
            hidden: 3,
            input: InputKind::Embedding { vocab: 6, dim: 2 },
            head,
            output: Output::Sigmoid,
            steps,
            frozen_embedding: false,
            pad: Some(pad),
        };
        let mut seed = 1u32;
        let tensors = spec
            .param_shapes()
            .iter()
            .map(|(_, dims)| {
                let data = (0..dims.iter().product::<usize>())
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
                    })
                    .collect();
                Tensor::new(dims, data).unwrap()
            })
            .collect();
        let mut params = spec.params_from_ordered(tensors).unwrap();
        params.head_w.data.iter_mut().for_each(|w| *w *= head_scale);
        let optimizer = OptimizerConfig {
            rule: crate::optim::Optimizer::rmsprop(0.01),
            clip_norm: None,
            lr_decay: None,
        };
        TrainSession::new(
            spec,
            false,
            &optimizer,
            &params,
            None,
            Device::Cpu,
            1,
            Recurrence::Scan,
        )
        .unwrap()
    }

    #[test]
    fn a_step_whose_gradient_overflows_changes_nothing() {
        let batch = Batch {
            ids: &[3, 5, 2, 1, 4, 1, 1, 2],
            // One of the two labels disagrees with the huge logit's sign.
            targets: BatchTargets::Binary(&[0.0, 1.0]),
            mask: None,
        };
        // Head weights of 1e30: the logit and loss stay finite (~1e30), but the
        // gradient reaching the LSTM is ~1e30 and its square overflows.
        let mut huge = small_session(Head::Last, 4, 0, 1e30);
        let (params, state) = (huge.params().unwrap(), huge.optimizer_state().unwrap());
        let stats = huge.step(&batch).unwrap();
        assert!(stats.skipped && stats.loss.is_finite(), "{stats:?}");
        assert_eq!(huge.params().unwrap(), params);
        assert_eq!(huge.optimizer_state().unwrap(), state);

        let mut normal = small_session(Head::Last, 4, 0, 1.0);
        let before = normal.params().unwrap();
        let stats = normal.step(&batch).unwrap();
        assert!(!stats.skipped, "{stats:?}");
        assert_ne!(normal.params().unwrap(), before);
    }

    #[test]
    fn last_and_mean_heads_ignore_post_padding() {
        for head in [Head::Last, Head::Mean] {
            let unpadded = eval_loss(head, 3, &[3, 5, 2], 0);
            let padded = eval_loss(head, 7, &[3, 5, 2, 0, 0, 0, 0], 0);
            assert!(
                (padded - unpadded).abs() < 1e-6,
                "{head:?}: padded {padded} vs unpadded {unpadded}"
            );
            // Without the PAD id, the padding steps would count.
            let counted = eval_loss(head, 7, &[3, 5, 2, 0, 0, 0, 0], 4);
            assert!(
                (counted - unpadded).abs() > 1e-4,
                "{head:?}: {counted} vs {unpadded}"
            );
        }
    }
}
