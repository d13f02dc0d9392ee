//! feedbacknet (facade, work in progress)
