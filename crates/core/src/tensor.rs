//! A float tensor whose rank is known only at run time.

use burn::tensor::{Device, Tensor, TensorData};

use crate::{CoreError, Result};

/// A Burn float tensor of rank 1 to 6, chosen at run time.
///
/// Interpreters of graph formats such as ONNX only learn ranks while running; this enum carries
/// the statically ranked Burn tensor inside and offers the operations that such interpreters
/// need, with ONNX (NumPy) broadcasting for the element-wise ones.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum DynTensor {
    R1(Tensor<1>),
    R2(Tensor<2>),
    R3(Tensor<3>),
    R4(Tensor<4>),
    R5(Tensor<5>),
    R6(Tensor<6>),
}

/// Applies an expression to the tensor inside a [`DynTensor`], keeping its rank.
#[macro_export]
macro_rules! dyn_map {
    ($value:expr, $t:ident => $body:expr) => {
        match $value {
            $crate::DynTensor::R1($t) => $crate::DynTensor::R1($body),
            $crate::DynTensor::R2($t) => $crate::DynTensor::R2($body),
            $crate::DynTensor::R3($t) => $crate::DynTensor::R3($body),
            $crate::DynTensor::R4($t) => $crate::DynTensor::R4($body),
            $crate::DynTensor::R5($t) => $crate::DynTensor::R5($body),
            $crate::DynTensor::R6($t) => $crate::DynTensor::R6($body),
        }
    };
}

/// Evaluates an expression on the tensor inside a [`DynTensor`], whatever its rank.
#[macro_export]
macro_rules! dyn_with {
    ($value:expr, $t:ident => $body:expr) => {
        match $value {
            $crate::DynTensor::R1($t) => $body,
            $crate::DynTensor::R2($t) => $body,
            $crate::DynTensor::R3($t) => $body,
            $crate::DynTensor::R4($t) => $body,
            $crate::DynTensor::R5($t) => $body,
            $crate::DynTensor::R6($t) => $body,
        }
    };
}

macro_rules! reshape_to {
    ($tensor:expr, $shape:expr, $context:expr) => {{
        let shape: &[usize] = $shape;
        match *shape {
            [a] => Ok(DynTensor::R1($tensor.reshape([a]))),
            [a, b] => Ok(DynTensor::R2($tensor.reshape([a, b]))),
            [a, b, c] => Ok(DynTensor::R3($tensor.reshape([a, b, c]))),
            [a, b, c, d] => Ok(DynTensor::R4($tensor.reshape([a, b, c, d]))),
            [a, b, c, d, e] => Ok(DynTensor::R5($tensor.reshape([a, b, c, d, e]))),
            [a, b, c, d, e, f] => Ok(DynTensor::R6($tensor.reshape([a, b, c, d, e, f]))),
            _ => Err(CoreError::Rank {
                context: $context.to_string(),
                rank: shape.len(),
            }),
        }
    }};
}

/// Element-wise binary operators with broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
}

impl DynTensor {
    /// Creates a tensor from raw `f32` values and a shape (rank 1 to 6).
    pub fn from_vec(values: Vec<f32>, shape: &[usize], device: &Device) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if numel != values.len() {
            return Err(CoreError::Shape {
                context: "DynTensor::from_vec".into(),
                expected: format!("{} values", numel),
                got: vec![values.len()],
            });
        }
        let flat = Tensor::<1>::from_data(TensorData::new(values, [numel]), device);
        reshape_to!(flat, shape, "DynTensor::from_vec")
    }

    /// The rank (number of dimensions).
    pub fn rank(&self) -> usize {
        match self {
            DynTensor::R1(_) => 1,
            DynTensor::R2(_) => 2,
            DynTensor::R3(_) => 3,
            DynTensor::R4(_) => 4,
            DynTensor::R5(_) => 5,
            DynTensor::R6(_) => 6,
        }
    }

    /// The dimensions.
    pub fn dims(&self) -> Vec<usize> {
        dyn_with!(self, t => t.dims().to_vec())
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// Reshapes to the given dimensions (rank 1 to 6), checking the element count.
    pub fn reshape(self, shape: &[usize]) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if numel != self.numel() {
            return Err(CoreError::Shape {
                context: "reshape".into(),
                expected: format!("{numel} elements for shape {shape:?}"),
                got: self.dims(),
            });
        }
        dyn_with!(self, t => reshape_to!(t, shape, "reshape"))
    }

    /// Wraps a rank-4 tensor.
    pub fn from4(tensor: Tensor<4>) -> Self {
        DynTensor::R4(tensor)
    }

    /// The rank-4 tensor inside, or a rank error.
    pub fn into4(self, context: &str) -> Result<Tensor<4>> {
        match self {
            DynTensor::R4(t) => Ok(t),
            other => Err(CoreError::Rank {
                context: format!("{context} (expects rank 4)"),
                rank: other.rank(),
            }),
        }
    }

    /// The rank-2 tensor inside, or a rank error.
    pub fn into2(self, context: &str) -> Result<Tensor<2>> {
        match self {
            DynTensor::R2(t) => Ok(t),
            other => Err(CoreError::Rank {
                context: format!("{context} (expects rank 2)"),
                rank: other.rank(),
            }),
        }
    }

    /// Prepends size-1 dimensions until the rank is `rank` (NumPy broadcasting alignment).
    pub fn unsqueeze_to(self, rank: usize) -> Result<Self> {
        let dims = self.dims();
        if dims.len() >= rank {
            return Ok(self);
        }
        let mut shape = vec![1; rank - dims.len()];
        shape.extend(dims);
        self.reshape(&shape)
    }

    /// Applies a broadcasting element-wise binary operator (ONNX/NumPy rules).
    pub fn binary(self, other: DynTensor, op: BinaryOp) -> Result<Self> {
        let rank = self.rank().max(other.rank());
        let (a, b) = (self.unsqueeze_to(rank)?, other.unsqueeze_to(rank)?);
        check_broadcast(&a.dims(), &b.dims())?;
        macro_rules! apply {
            ($x:ident, $y:ident, $wrap:path) => {
                Ok($wrap(match op {
                    BinaryOp::Add => $x.add($y),
                    BinaryOp::Sub => $x.sub($y),
                    BinaryOp::Mul => $x.mul($y),
                    BinaryOp::Div => $x.div($y),
                }))
            };
        }
        match (a, b) {
            (DynTensor::R1(x), DynTensor::R1(y)) => apply!(x, y, DynTensor::R1),
            (DynTensor::R2(x), DynTensor::R2(y)) => apply!(x, y, DynTensor::R2),
            (DynTensor::R3(x), DynTensor::R3(y)) => apply!(x, y, DynTensor::R3),
            (DynTensor::R4(x), DynTensor::R4(y)) => apply!(x, y, DynTensor::R4),
            (DynTensor::R5(x), DynTensor::R5(y)) => apply!(x, y, DynTensor::R5),
            (DynTensor::R6(x), DynTensor::R6(y)) => apply!(x, y, DynTensor::R6),
            (x, _) => Err(CoreError::Rank {
                context: "binary operator".into(),
                rank: x.rank(),
            }),
        }
    }

    /// Concatenates tensors of equal rank along `axis`.
    pub fn concat(tensors: Vec<DynTensor>, axis: usize) -> Result<Self> {
        let first = tensors.first().ok_or_else(|| CoreError::Shape {
            context: "concat".into(),
            expected: "at least one input".into(),
            got: vec![],
        })?;
        let rank = first.rank();
        let dims0 = first.dims();
        if axis >= rank {
            return Err(CoreError::Shape {
                context: "concat".into(),
                expected: format!("axis < rank {rank}"),
                got: dims0,
            });
        }
        for t in &tensors {
            let d = t.dims();
            let fits = d.len() == rank
                && d.iter()
                    .zip(&dims0)
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b);
            if !fits {
                return Err(CoreError::Shape {
                    context: "concat".into(),
                    expected: format!("shapes equal to {dims0:?} except on axis {axis}"),
                    got: d,
                });
            }
        }
        macro_rules! cat {
            ($variant:path) => {{
                let parts = tensors
                    .into_iter()
                    .map(|t| match t {
                        $variant(x) => x,
                        _ => unreachable!("ranks checked above"),
                    })
                    .collect::<Vec<_>>();
                Ok($variant(Tensor::cat(parts, axis)))
            }};
        }
        match rank {
            1 => cat!(DynTensor::R1),
            2 => cat!(DynTensor::R2),
            3 => cat!(DynTensor::R3),
            4 => cat!(DynTensor::R4),
            5 => cat!(DynTensor::R5),
            _ => cat!(DynTensor::R6),
        }
    }

    /// Flattens every dimension into one rank-1 tensor.
    pub fn flatten_all(self) -> Tensor<1> {
        let n = self.numel();
        dyn_with!(self, t => t.reshape([n]))
    }

    /// Reads the values back to the host, row-major.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        self.clone()
            .flatten_all()
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| CoreError::Readback(format!("{e:?}")))
    }
}

fn check_broadcast(a: &[usize], b: &[usize]) -> Result<()> {
    let ok = a.iter().zip(b).all(|(x, y)| x == y || *x == 1 || *y == 1);
    if ok {
        Ok(())
    } else {
        Err(CoreError::Shape {
            context: "broadcast".into(),
            expected: format!("a shape broadcastable with {a:?}"),
            got: b.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn broadcasting_add_aligns_trailing_dimensions() {
        let a = DynTensor::from_vec(vec![0.0; 2 * 3 * 2 * 2], &[2, 3, 2, 2], &device()).unwrap();
        let b = DynTensor::from_vec(vec![1.0, 2.0, 3.0], &[3, 1, 1], &device()).unwrap();
        let c = a.binary(b, BinaryOp::Add).unwrap();
        assert_eq!(c.dims(), vec![2, 3, 2, 2]);
        let v = c.to_vec().unwrap();
        assert_eq!(&v[0..4], &[1.0; 4]);
        assert_eq!(&v[4..8], &[2.0; 4]);
        assert_eq!(&v[8..12], &[3.0; 4]);
    }

    #[test]
    fn incompatible_broadcast_is_an_error() {
        let a = DynTensor::from_vec(vec![0.0; 6], &[2, 3], &device()).unwrap();
        let b = DynTensor::from_vec(vec![0.0; 2], &[2], &device()).unwrap();
        assert!(matches!(
            a.binary(b, BinaryOp::Mul),
            Err(CoreError::Shape { .. })
        ));
    }

    #[test]
    fn concat_checks_shapes_and_joins() {
        let a = DynTensor::from_vec(vec![1.0; 4], &[1, 2, 2], &device()).unwrap();
        let b = DynTensor::from_vec(vec![2.0; 2], &[1, 1, 2], &device()).unwrap();
        let c = DynTensor::concat(vec![a.clone(), b], 1).unwrap();
        assert_eq!(c.dims(), vec![1, 3, 2]);
        assert_eq!(c.to_vec().unwrap(), vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0]);
        let bad = DynTensor::from_vec(vec![0.0; 3], &[1, 1, 3], &device()).unwrap();
        assert!(DynTensor::concat(vec![a, bad], 1).is_err());
    }

    #[test]
    fn reshape_checks_element_count() {
        let a = DynTensor::from_vec(vec![0.0; 6], &[2, 3], &device()).unwrap();
        assert!(a.clone().reshape(&[4, 2]).is_err());
        assert_eq!(a.reshape(&[3, 1, 2]).unwrap().dims(), vec![3, 1, 2]);
    }
}
