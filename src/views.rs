//! The views of an image that a method explains (one fitted view, or ten crops), and how their
//! maps are averaged back into one map in image space.

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::InputSpec;
use feedbacknet_localize::{ImageGeometry, ResizeMode, SaliencyMap};
use image::{DynamicImage, RgbImage, imageops, imageops::FilterType};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, preprocess::prepare};

/// Which views of an image a saliency map is computed on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Crops {
    /// One view, fitted to the network input by the configured
    /// [`ResizeMode`] (default).
    #[default]
    Single,
    /// 10-crop averaging (Krizhevsky et al., 2012): resize the shorter side to `shorter_side`,
    /// take the four corner crops and the centre crop of the input size, and their horizontal
    /// mirrors; the ten maps are averaged in image space (each pixel over the crops that see it).
    Ten {
        /// Length of the shorter side after the resize (256 for a 224 input is usual).
        shorter_side: u32,
    },
}

impl Crops {
    /// Ten crops with the usual 8:7 ratio between resize and input (256 for 224).
    pub fn ten_for(spec: &InputSpec) -> Self {
        let side = spec.width.min(spec.height) as u32;
        Crops::Ten {
            shorter_side: (side * 8).div_ceil(7),
        }
    }
}

/// Where one view's input-sized map lies on the composition canvas.
#[derive(Debug, Clone, Copy)]
struct Placement {
    x: usize,
    y: usize,
    mirrored: bool,
}

/// The views of one image, as a `[views, 3, H, W]` input batch.
#[derive(Debug, Clone)]
pub(crate) struct Views {
    /// The normalized views.
    pub input: Tensor<4>,
    /// From the composition canvas to the original image.
    pub geometry: ImageGeometry,
    placements: Vec<Placement>,
    canvas: (usize, usize),
    view: (usize, usize),
}

impl Views {
    /// The views of `image` for `crops`.
    pub fn new(
        image: &DynamicImage,
        spec: &InputSpec,
        resize: ResizeMode,
        crops: Crops,
        device: &Device,
    ) -> Result<Self> {
        match crops {
            Crops::Single => Self::single(image, spec, resize, device),
            Crops::Ten { shorter_side } => Self::ten(image, spec, shorter_side, device),
        }
    }

    fn single(
        image: &DynamicImage,
        spec: &InputSpec,
        resize: ResizeMode,
        device: &Device,
    ) -> Result<Self> {
        let prepared = prepare(image, spec, resize, device)?;
        Ok(Self {
            input: prepared.input,
            geometry: prepared.geometry,
            placements: vec![Placement {
                x: 0,
                y: 0,
                mirrored: false,
            }],
            canvas: (spec.width, spec.height),
            view: (spec.width, spec.height),
        })
    }

    fn ten(image: &DynamicImage, spec: &InputSpec, side: u32, device: &Device) -> Result<Self> {
        let (width, height) = (image.width(), image.height());
        if width == 0 || height == 0 {
            return Err(Error::EmptyImage { width, height });
        }
        let (w, h) = (spec.width as u32, spec.height as u32);
        let fit = ResizeMode::ResizeCrop { shorter_side: side };
        let (rw, rh) = ImageGeometry::new(width, height, w, h, fit)?.resized_size();
        let resized = imageops::resize(&image.to_rgb8(), rw, rh, FilterType::Triangle);
        let corners = [
            (0, 0),
            (rw - w, 0),
            (0, rh - h),
            (rw - w, rh - h),
            ((rw - w) / 2, (rh - h) / 2),
        ];
        let mut planar = Vec::with_capacity(10 * 3 * spec.width * spec.height);
        let mut placements = Vec::with_capacity(10);
        for mirrored in [false, true] {
            for &(x, y) in &corners {
                let mut crop: RgbImage = imageops::crop_imm(&resized, x, y, w, h).to_image();
                if mirrored {
                    imageops::flip_horizontal_in_place(&mut crop);
                }
                planar.extend(spec.normalization.planar_from_rgb(
                    crop.as_raw(),
                    spec.width,
                    spec.height,
                ));
                placements.push(Placement {
                    x: x as usize,
                    y: y as usize,
                    mirrored,
                });
            }
        }
        let input = Tensor::from_data(
            TensorData::new(planar, [10, 3, spec.height, spec.width]),
            device,
        );
        Ok(Self {
            input,
            geometry: ImageGeometry::new(width, height, rw, rh, ResizeMode::Stretch)?,
            placements,
            canvas: (rw as usize, rh as usize),
            view: (spec.width, spec.height),
        })
    }

    /// Number of views.
    pub fn len(&self) -> usize {
        self.placements.len()
    }

    /// Averages one map per view (any resolution: resized to the view first) on the canvas.
    pub fn compose(&self, maps: &[SaliencyMap]) -> Result<SaliencyMap> {
        let (vw, vh) = self.view;
        let fitted = maps
            .iter()
            .map(|m| {
                if (m.width(), m.height()) == (vw, vh) {
                    Ok(m.clone())
                } else {
                    m.resize_bilinear(vw, vh)
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if let ([only], [p]) = (fitted.as_slice(), self.placements.as_slice())
            && self.canvas == self.view
            && !p.mirrored
        {
            return Ok(only.clone());
        }
        let (cw, ch) = self.canvas;
        let mut sum = vec![0.0f32; cw * ch];
        let mut count = vec![0u32; cw * ch];
        for (map, p) in fitted.iter().zip(&self.placements) {
            for y in 0..vh {
                for x in 0..vw {
                    let sx = if p.mirrored { vw - 1 - x } else { x };
                    let i = (p.y + y) * cw + p.x + x;
                    if let (Some(s), Some(n)) = (sum.get_mut(i), count.get_mut(i)) {
                        *s += map.get(sx, y);
                        *n += 1;
                    }
                }
            }
        }
        let data = sum
            .iter()
            .zip(&count)
            .map(|(&s, &c)| if c > 0 { s / c as f32 } else { 0.0 })
            .collect();
        Ok(SaliencyMap::new(cw, ch, data)?)
    }
}
