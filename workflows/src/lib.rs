//! Product workflows (avatar training, portrait generation) arrive with their own issue.
