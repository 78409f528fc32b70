//! The descriptors of the current connection (protocol.md §3.5): the latest per platform,
//! and the session default, which is the connection's first descriptor.
//!
//! A connection describes one to a few platforms, so they live in a small vector sorted by
//! platform (a B-tree would allocate a node for eleven to hold one), and the default is
//! kept as a position in it rather than a second copy, until a newer descriptor for the
//! same platform replaces the entry it points at.

use crate::wire::CapabilityDescriptor;

/// Where the session default lives.
#[derive(Debug)]
enum Default {
    /// The entry at this index of `latest`, which is still the first descriptor.
    At(usize),
    /// Its own copy: it has no platform (so it is not kept by platform), or a newer
    /// descriptor for its platform replaced it there.
    Own(Box<CapabilityDescriptor>),
}

#[derive(Debug)]
pub(super) struct Descriptors {
    /// The latest descriptor of each platform, sorted by platform.
    latest: Vec<CapabilityDescriptor>,
    default: Option<Default>,
}

impl Descriptors {
    pub(super) const fn new() -> Self {
        Self {
            latest: Vec::new(),
            default: None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.latest.len()
    }

    pub(super) fn contains(&self, platform: &str) -> bool {
        self.find(platform).is_ok()
    }

    fn find(&self, platform: &str) -> Result<usize, usize> {
        self.latest
            .binary_search_by(|d| d.platform.as_str().cmp(platform))
    }

    pub(super) fn get(&self, platform: &str) -> Option<&CapabilityDescriptor> {
        self.find(platform).ok().and_then(|at| self.latest.get(at))
    }

    pub(super) fn default(&self) -> Option<&CapabilityDescriptor> {
        match self.default.as_ref()? {
            Default::At(at) => self.latest.get(*at),
            Default::Own(descriptor) => Some(descriptor),
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &CapabilityDescriptor> {
        self.latest.iter()
    }

    /// Keeps `descriptor`; returns whether it was the connection's first (the default).
    pub(super) fn insert(&mut self, descriptor: CapabilityDescriptor) -> bool {
        let first = self.default.is_none();
        if descriptor.platform.is_empty() {
            if first {
                self.default = Some(Default::Own(Box::new(descriptor)));
            }
            return first;
        }
        match self.find(&descriptor.platform) {
            Ok(at) => {
                let Some(slot) = self.latest.get_mut(at) else {
                    return first;
                };
                let old = std::mem::replace(slot, descriptor);
                if matches!(self.default, Some(Default::At(d)) if d == at) {
                    // The default stays the first descriptor, not this newer one.
                    self.default = Some(Default::Own(Box::new(old)));
                }
            }
            Err(at) => {
                // Exactly as many slots as platforms: growth by doubling would reserve
                // four descriptors for one.
                self.latest.reserve_exact(1);
                self.latest.insert(at, descriptor);
                match &mut self.default {
                    Some(Default::At(d)) if *d >= at => *d += 1,
                    None => self.default = Some(Default::At(at)),
                    Some(_) => {}
                }
            }
        }
        first
    }

    /// Forgets everything: the connection ended.
    pub(super) fn clear(&mut self) {
        *self = Self::new();
    }
}
