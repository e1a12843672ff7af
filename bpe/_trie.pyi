# The trie builder (bpe/_trie.pyx) has no Python-visible names: _core cimports it.
