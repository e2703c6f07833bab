//! Sans-IO mig33 protocol (work in progress).
