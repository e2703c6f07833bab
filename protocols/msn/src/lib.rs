//! Sans-IO msn protocol (work in progress).
