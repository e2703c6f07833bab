//! Presence statuses and contact lists.

/// A presence status as written on the wire (`NLN`, `AWY`, ... `FLN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Online,
    Busy,
    Idle,
    BeRightBack,
    Away,
    OnThePhone,
    OutToLunch,
    /// Appear offline (only ever set by oneself).
    Hidden,
    Offline,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Online,
        Status::Busy,
        Status::Idle,
        Status::BeRightBack,
        Status::Away,
        Status::OnThePhone,
        Status::OutToLunch,
        Status::Hidden,
        Status::Offline,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Status::Online => "NLN",
            Status::Busy => "BSY",
            Status::Idle => "IDL",
            Status::BeRightBack => "BRB",
            Status::Away => "AWY",
            Status::OnThePhone => "PHN",
            Status::OutToLunch => "LUN",
            Status::Hidden => "HDN",
            Status::Offline => "FLN",
        }
    }

    pub fn from_code(code: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether others see this user as online.
    pub fn is_visible(self) -> bool {
        !matches!(self, Status::Hidden | Status::Offline)
    }
}

/// One of the four per-user contact lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    /// FL: people I watch.
    Forward,
    /// AL: people allowed to see me.
    Allow,
    /// BL: people blocked from seeing me.
    Block,
    /// RL: people who have me on their FL (maintained by the server).
    Reverse,
}

impl List {
    pub const ALL: [List; 4] = [List::Forward, List::Allow, List::Block, List::Reverse];

    pub fn code(self) -> &'static str {
        match self {
            List::Forward => "FL",
            List::Allow => "AL",
            List::Block => "BL",
            List::Reverse => "RL",
        }
    }

    pub fn from_code(code: &str) -> Option<List> {
        List::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The bit used in `LST` lines: FL 1, AL 2, BL 4, RL 8.
    pub fn bit(self) -> u8 {
        match self {
            List::Forward => 1,
            List::Allow => 2,
            List::Block => 4,
            List::Reverse => 8,
        }
    }
}

/// A set of lists, as the bit field of an `LST` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ListBits(pub u8);

impl ListBits {
    pub fn contains(self, list: List) -> bool {
        self.0 & list.bit() != 0
    }

    pub fn insert(&mut self, list: List) {
        self.0 |= list.bit();
    }

    pub fn remove(&mut self, list: List) {
        self.0 &= !list.bit();
    }

    pub fn lists(self) -> impl Iterator<Item = List> {
        List::ALL.into_iter().filter(move |l| self.contains(*l))
    }
}
