//! Sans-IO icq protocol (work in progress).
